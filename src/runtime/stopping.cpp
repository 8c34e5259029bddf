#include "runtime/stopping.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <span>

#include "conn/connection_tracker.hpp"
#include "loop/idle_exit.hpp"
#include "net/io.hpp"
#include "net/signals.hpp"

namespace zen {

namespace {

bool idle_exit_due_for(const ServerContext& context, std::span<const int> listener_fds, TimePoint now) {
    if (now < idle_exit_time(context, now)) return false;
    for (const int fd : listener_fds) {
        pollfd pfd{fd, POLLIN, 0};
        if (::poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN) != 0) return false;  // a client is waiting
    }
    return true;
}

}  // namespace

TimePoint drain_deadline(const ServerContext& context) { return stop_time() + context.options.drain_timeout; }

TimePoint idle_exit_time(const ServerContext& context, TimePoint now) {
    if (!context.decides_idle_exit) return never;
    return zen::idle_exit_time(context.tracker, context.options.exit_idle, now);
}

TimePoint idle_exit_wake(const ServerContext& context, TimePoint now) {
    if (!context.decides_idle_exit) return never;
    return idle_exit_next_check(context.tracker, context.options.exit_idle, now);
}

bool idle_exit_due(const ServerContext& context, std::initializer_list<int> listener_fds, TimePoint now) {
    return idle_exit_due_for(context, std::span<const int>(listener_fds.begin(), listener_fds.size()), now);
}

bool idle_exit_due(const ServerContext& context, const std::vector<int>& listener_fds, TimePoint now) {
    return idle_exit_due_for(context, listener_fds, now);
}

void quit_for_idleness(const ServerContext& context) {
    if (request_quit()) {
        context.log.server(LogLevel::info, "idle_exit",
                           "No connection for " + duration_text(context.options.exit_idle) +
                               ": exiting (--exit-idle)");
    }
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
    context_.log.flush_until(Clock::now() + hard_stop_grace);  // --log-file's lines are written by a thread
    ::_exit(1);
}

}  // namespace zen
