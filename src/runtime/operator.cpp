#include "runtime/operator.hpp"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <thread>

#include "conn/connection_tracker.hpp"
#include "net/signals.hpp"
#include "runtime/stopping.hpp"
#include "runtime/tracing.hpp"

namespace zen {

void log_counters(const ServerContext& context, std::string_view when) {
    Log::Fields fields;
    std::string message = "Counters (" + std::string(when) + "):";
    const auto add = [&](std::string_view name, std::uint64_t value) {
        fields.emplace_back(name, value);
        message += (fields.size() == 1 ? " " : ", ") + std::string(name) + " " + std::to_string(value);
    };
    const ConnectionTracker& tracker = context.tracker;
    const auto value = [&](Counter counter) { return tracker.value(counter); };
    add("active", static_cast<std::uint64_t>(std::max(0, tracker.active())));
    // The totals first, as the line has always begun, then every kind (as --metrics has them).
    for (const Counter counter : {Counter::accepted, Counter::answered, Counter::refused_busy, Counter::refused_denied})
        add(counter_names[static_cast<std::size_t>(counter)], value(counter));
    add("timeouts", tracker.sum(first_timeout, last_timeout));
    add("protocol_errors", tracker.sum(first_error, last_error));
    add("resets", value(Counter::resets));
    add("draining", static_cast<std::uint64_t>(std::max(0, tracker.draining())));
    for (std::size_t i = static_cast<std::size_t>(Counter::refused_proxy); i < counter_kinds; ++i) {
        if (static_cast<Counter>(i) != Counter::resets) add(counter_names[i], value(static_cast<Counter>(i)));
    }
    context.log.server(LogLevel::info, "counters", message, fields);
}

namespace {

// Held while the signal thread works; fork() takes it first, so no worker is born holding the
// log's lock or the live table's.
std::mutex reporter_mutex;

std::atomic<std::uint64_t> reload_count{0};

sigset_t operator_signals() { return signal_set({SIGUSR1, SIGHUP}); }

}  // namespace

void reload(const ServerContext& context, std::string_view who) {
    std::string done;
    std::string failed;
    const auto add = [](std::string& list, const std::string& item) { list += (list.empty() ? "" : ", ") + item; };
    if (context.log.has_file()) {
        if (auto reopened = context.log.reopen(); reopened) {
            add(done, "log reopened");
        } else {
            add(failed, "log not reopened (still writing to the old file): " + reopened.error());
        }
    }
    const std::string& path = context.options.aphorisms_path;
    if (!path.empty()) {
        auto loaded = AphorismTable::load_file(path, context.options.limits.max_question);
        if (loaded) {
            const std::size_t size = loaded->size();
            add(done, std::to_string(size) + (size == 1 ? " aphorism from " : " aphorisms from ") + path);
            context.table.publish(std::move(loaded).value());
        } else {
            add(failed, "kept the previous aphorisms: " + loaded.error());
        }
    }
    reload_count.fetch_add(1);
    std::string message(who);
    if (failed.empty()) {
        message += "Reloaded on SIGHUP: " + (done.empty() ? "nothing to reload (no --log-file, no --aphorisms)" : done);
        context.log.server(LogLevel::info, "reload", message);
    } else {
        message += "Reload on SIGHUP failed: " + failed + (done.empty() ? "" : "; done: " + done);
        context.log.server(LogLevel::warning, "reload_failed", message);
    }
}

std::uint64_t reloads_done() { return reload_count.load(); }

OperatorSignals::OperatorSignals(const ServerContext& context, std::string who)
    : context_(context), who_(std::move(who)) {
    static const bool fork_guard = [] {
        ::pthread_atfork([] { reporter_mutex.lock(); }, [] { reporter_mutex.unlock(); },
                         [] { reporter_mutex.unlock(); });
        return true;
    }();
    (void)fork_guard;
    const sigset_t set = operator_signals();
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
    thread_ = std::thread([this] {
        const sigset_t wanted = operator_signals();
        started_.store(true);
        started_.notify_one();
        for (;;) {
            int signal_number = 0;
            if (::sigwait(&wanted, &signal_number) != 0 || stopping_.load()) return;
            const std::lock_guard lock(reporter_mutex);
            if (stopping_.load()) return;  // the destructor looked, found the thread idle, and is joining
            if (signal_number == SIGHUP) {
                reload(context_, who_);
            } else {
                log_counters(context_, "SIGUSR1");
                if (who_.empty()) write_trace(context_, "SIGUSR1");  // prefork's parent writes its children's too
            }
        }
    });
    started_.wait(false);
}

OperatorSignals::~OperatorSignals() {
    stopping_.store(true);
    ::pthread_kill(thread_.native_handle(), SIGUSR1);
    // The serving is over. A reload or a dump still at work (a trace written to a disk that does
    // not answer) gets hard_stop_grace to finish; the stop does not wait on it longer, as it
    // waits on nothing else past the drain: the process ends as a hard stop does.
    const TimePoint deadline = Clock::now() + hard_stop_grace;
    bool idle = false;
    while (!(idle = reporter_mutex.try_lock()) && Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    if (!idle) {
        context_.log.server(LogLevel::error, "hard_stop",
                            who_ + "The SIGHUP/SIGUSR1 thread is still busy with a file after the serving ended: "
                                   "stopping hard");
        context_.log.flush_until(Clock::now() + hard_stop_grace);
        ::_exit(1);
    }
    reporter_mutex.unlock();
    thread_.join();
    // prefork's workers _exit() when their serving ends: their last lines go out first.
    context_.log.flush_until(Clock::now() + hard_stop_grace);
}

}  // namespace zen
