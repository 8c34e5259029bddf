#include "servers/blocking.hpp"

#include <poll.h>
#include <unistd.h>

#include <algorithm>

#include "net/io.hpp"
#include "net/signals.hpp"
#include "servers/connection_tracker.hpp"
#include "servers/conversation.hpp"

namespace zen {

namespace {


}  // namespace

ListenerWake wait_for_client(const Listener& listener, const ServerContext& context) {
    const auto exit_idle = context.options.exit_idle;
    const bool watch_idle = exit_idle.count() > 0 && context.decides_idle_exit;
    for (;;) {
        int timeout_ms = -1;
        if (watch_idle) {
            if (idle_exit_due(context, {listener.fd.get()})) {
                quit_for_idleness(context);
                return ListenerWake::quit;
            }
            const auto idle = std::chrono::duration_cast<std::chrono::milliseconds>(context.tracker.idle_for());
            // Not idle long enough (or a client is open): look again when it could be.
            timeout_ms = static_cast<int>(std::max<std::int64_t>(10, (exit_idle - idle).count()));
        }
        pollfd fds[3] = {{listener.fd.get(), POLLIN, 0}, {stop_fd(), POLLIN, 0}, {quit_fd(), POLLIN, 0}};
        const int n = ::poll(fds, 3, timeout_ms);
        if (n < 0 && errno != EINTR) return ListenerWake::connection;  // accept() will report it
        if (fds[1].revents != 0) return ListenerWake::stop;
        if (fds[2].revents != 0) return ListenerWake::quit;
        if (fds[0].revents != 0) return ListenerWake::connection;
    }
}

int accept_loop(Listener& listener, const ServerContext& context) {
    for (;;) {
        if (wait_for_client(listener, context) != ListenerWake::connection) return 0;
        AcceptOutcome accepted = accept_client(listener.fd.get());
        if (accepted.status == AcceptStatus::accepted) {
            converse(std::move(accepted.client), context);
        } else if (!handle_accept_problem(accepted, context)) {
            return 1;
        }
    }
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

HardStopWatchdog::HardStopWatchdog(const ServerContext& context) : context_(context) {
    thread_ = std::thread([this] { watch(); });
}

HardStopWatchdog::~HardStopWatchdog() {
    {
        std::lock_guard lock(mutex_);
        done_ = true;
    }
    thread_.join();
}

void HardStopWatchdog::watch() {
    // Wakes every 100 ms to notice the end of serving, so the destructor never waits long.
    for (;;) {
        {
            std::lock_guard lock(mutex_);
            if (done_) return;
        }
        if (stop_requested() && Clock::now() >= drain_deadline(context_) + hard_stop_grace) break;
        wait_for(stop_requested() ? -1 : stop_fd(), POLLIN, -1, Clock::now() + std::chrono::milliseconds(100));
    }
    std::lock_guard lock(mutex_);  // held to the end: serving cannot finish and free the context
    if (done_) return;
    context_.log.server(LogLevel::error, "hard_stop",
                        "Drain time (" + duration_text(context_.options.drain_timeout) +
                            ") is over with conversations still open: stopping hard");
    ::_exit(1);
}

}  // namespace zen
