#include "servers/lifecycle.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <sys/socket.h>
#include <pthread.h>
#include <signal.h>
#include <systemd/sd-daemon.h>

#include <algorithm>
#include <cerrno>
#include <atomic>
#include <mutex>
#include <span>

#include "net/io.hpp"
#include "net/signals.hpp"
#include "servers/readiness.hpp"
#include "conn/connection_tracker.hpp"

namespace zen {

namespace {

// No allocation: the event loops ask this on every turn.
bool idle_exit_due_for(const ServerContext& context, std::span<const int> listener_fds) {
    const auto exit_idle = context.options.exit_idle;
    if (exit_idle.count() <= 0 || !context.decides_idle_exit || context.tracker.idle_for() < exit_idle) return false;
    for (const int fd : listener_fds) {
        pollfd pfd{fd, POLLIN, 0};
        if (::poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN) != 0) return false;  // a client is waiting
    }
    return true;
}

}  // namespace

bool idle_exit_due(const ServerContext& context, std::initializer_list<int> listener_fds) {
    return idle_exit_due_for(context, std::span<const int>(listener_fds.begin(), listener_fds.size()));
}

bool idle_exit_due(const ServerContext& context, const std::vector<int>& listener_fds) {
    return idle_exit_due_for(context, listener_fds);
}

void quit_for_idleness(const ServerContext& context) {
    if (request_quit()) {
        context.log.server(LogLevel::info, "idle_exit",
                           "No connection for " + duration_text(context.options.exit_idle) +
                               ": exiting (--exit-idle)");
    }
}

namespace {

// Process-wide: one server per process, and a prefork worker (born before the announcement)
// never announces on its own.
std::mutex startup_mutex;
bool announced = false;
std::string first_failure;

}  // namespace

bool announce_serving(const Listener& listener, const ServerContext& context) {
    const std::lock_guard lock(startup_mutex);
    if (announced) return true;
    // READY=1 first. sd_notify() is a no-op unless systemd asked for it (NOTIFY_SOCKET), and
    // needs a socket of its own: without a descriptor for it, the start-up has failed, rather
    // than leave a server systemd never hears from. A NOTIFY_SOCKET nobody listens on (a
    // variable left in a shell) is no supervisor waiting: said in the log, and we serve.
    const int notified = ::sd_notify(0, "READY=1");
    const bool short_of_resources =
        notified == -EMFILE || notified == -ENFILE || notified == -ENOBUFS || notified == -ENOMEM;
    if (short_of_resources) {
        if (first_failure.empty()) first_failure = "cannot tell systemd READY=1: " + errno_text(-notified);
        return false;
    }
    announced = true;
    announce_accepting();  // /ready turns 200
    context.log.server(LogLevel::info, "listening", "Listening at " + listener.display);
    if (notified < 0) {
        context.log.server(LogLevel::warning, "notify_error",
                           "Cannot tell systemd READY=1 (NOTIFY_SOCKET): " + errno_text(-notified));
    }
    return true;
}

bool serving_announced() {
    const std::lock_guard lock(startup_mutex);
    return announced;
}

int startup_failed(const ServerContext& context, std::string_view event, std::string_view cause) {
    {
        const std::lock_guard lock(startup_mutex);
        if (!announced) {
            if (first_failure.empty()) first_failure = cause;
            return 1;
        }
    }
    // A log line begins with a capital, as the others do; stderr's follows "zen serve: ".
    std::string line(cause);
    if (!line.empty() && line[0] >= 'a' && line[0] <= 'z') line[0] = static_cast<char>(line[0] - 'a' + 'A');
    context.log.server(LogLevel::error, event, line);
    return 1;
}

std::string startup_failure() {
    const std::lock_guard lock(startup_mutex);
    return first_failure;
}

void log_why_stopped(const ServerContext& context) {
    const char* signal_name = nullptr;
    if (stop_requested()) {
        signal_name = stop_signal_number() == SIGINT ? "SIGINT" : "SIGTERM";
    } else if (quit_signal_received()) {
        signal_name = "SIGQUIT";
    }
    if (signal_name != nullptr) context.log.server(LogLevel::info, "stopped", std::string("Stopped on ") + signal_name);
}

TimePoint drain_deadline(const ServerContext& context) {
    return stop_time() + context.options.drain_timeout;
}

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
            if (signal_number == SIGHUP) {
                reload(context_, who_);
            } else {
                log_counters(context_, "SIGUSR1");
            }
        }
    });
    started_.wait(false);
}

OperatorSignals::~OperatorSignals() {
    stopping_.store(true);
    ::pthread_kill(thread_.native_handle(), SIGUSR1);
    thread_.join();
}

void log_accept_problem(const AcceptOutcome& outcome, const ServerContext& context) {
    if (outcome.status == AcceptStatus::failed) {
        context.log.server(LogLevel::error, "accept_error", "Cannot accept connections: " + errno_text(outcome.error));
        return;
    }
    if (outcome.status != AcceptStatus::out_of_fds) return;
    static std::atomic<std::int64_t> last_logged{0};
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(Clock::now().time_since_epoch()).count();
    std::int64_t previous = last_logged.load();
    if (now != previous && last_logged.compare_exchange_strong(previous, now)) {
        context.log.server(LogLevel::warning, "accept_error",
                           "Cannot accept a connection: " + errno_text(outcome.error) + " (retrying)");
    }
}

bool handle_accept_problem(const AcceptOutcome& outcome, const ServerContext& context) {
    log_accept_problem(outcome, context);
    if (outcome.status == AcceptStatus::failed) return false;
    if (outcome.status == AcceptStatus::out_of_fds) {
        wait_for(stop_fd(), POLLIN, -1, Clock::now() + accept_pause);
    }
    return true;
}

int serve_on_threads(int count, std::string_view what, const std::function<int(int)>& body, const Listener& listener,
                     const ServerContext& context) {
    ThreadGroup threads;
    std::atomic<int> failures{0};
    for (int i = 0; i < count; ++i) {
        auto started = threads.start([&failures, &body, i] {
            if (body(i) != 0) failures.fetch_add(1);
        });
        if (!started) {
            request_quit();
            threads.wait_all();
            return startup_failed(context, "thread_error",
                                  "cannot start " + std::string(what) + " " + std::to_string(i + 1) + ": " +
                                      started.error());
        }
    }
    if (!announce_serving(listener, context)) request_quit();  // the threads end; exit 1
    threads.wait_all();
    if (!serving_announced()) return 1;
    return failures.load() == 0 ? 0 : 1;
}

Result<Ok> ThreadGroup::start(std::function<void()> body) {
    std::lock_guard lock(mutex_);
    try {
        std::thread([this, body = std::move(body)] {
            body();
            std::lock_guard finished_lock(mutex_);
            --running_;
            finished_.notify_all();
        }).detach();
    } catch (const std::system_error& e) {
        return Error{e.code().message()};
    }
    ++running_;
    return Ok{};
}

void ThreadGroup::wait_all() {
    std::unique_lock lock(mutex_);
    finished_.wait(lock, [this] { return running_ == 0; });
}

HardStopWatchdog::HardStopWatchdog(const ServerContext& context, std::function<void()> while_stopping)
    : context_(context), while_stopping_(std::move(while_stopping)), done_event_(::eventfd(0, EFD_CLOEXEC)) {
    thread_ = std::thread([this] { watch(); });
}

HardStopWatchdog::~HardStopWatchdog() {
    {
        std::lock_guard lock(mutex_);
        done_ = true;
    }
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(done_event_.get(), &one, sizeof one);
    thread_.join();
}

void HardStopWatchdog::watch() {
    // Wakes at a stop, at the end of serving (done_event_), and every 100 ms (20 ms once
    // stopping) to look at the time.
    for (;;) {
        {
            std::lock_guard lock(mutex_);
            if (done_) return;
        }
        const bool stopping = stop_requested();
        if (stopping && while_stopping_) while_stopping_();
        if (stopping && Clock::now() >= drain_deadline(context_) + hard_stop_grace) break;
        wait_for(done_event_.get(), POLLIN, stopping ? -1 : stop_fd(),
                 Clock::now() + std::chrono::milliseconds(stopping ? 20 : 100));
    }
    std::lock_guard lock(mutex_);  // held to the end: serving cannot finish and free the context
    if (done_) return;
    context_.log.server(LogLevel::error, "hard_stop",
                        "Drain time (" + duration_text(context_.options.drain_timeout) +
                            ") is over with conversations still open: stopping hard");
    ::_exit(1);
}

}  // namespace zen
