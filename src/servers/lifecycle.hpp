// How a server of any architecture starts, waits and stops, besides its own loop: the drain
// deadline, --exit-idle, the counters on SIGUSR1, the reload on SIGHUP, accept() failures, a group of threads to wait
// for, and the hard stop when a drain overruns. The signals themselves are src/net/signals.hpp.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/clock.hpp"
#include "base/result.hpp"
#include "net/fd.hpp"
#include "servers/options.hpp"

namespace zen {

// Past the drain deadline, how long before a process still running is stopped hard.
inline constexpr std::chrono::milliseconds hard_stop_grace{500};

// The moment a stopping server closes the connections it is still draining.
TimePoint drain_deadline(const ServerContext& context);

// --exit-idle: true once the server has had no open conversation for that long and no client
// waits in any of its listeners' backlogs (never when this process does not decide).
bool idle_exit_due(const ServerContext& context, std::initializer_list<int> listener_fds);
bool idle_exit_due(const ServerContext& context, const std::vector<int>& listener_fds);
// Asks the process to quit for --exit-idle, logging it once.
void quit_for_idleness(const ServerContext& context);

// Start-up. Each architecture calls announce_serving() exactly once, when its own set-up (event
// loop, ring, threads, workers) has succeeded and it is about to serve: only then does systemd
// hear READY=1 and the log say "Listening at ...". A set-up failure before that point goes
// through startup_failed() instead, which keeps the cause for run_serve() to print as the one
// line on stderr (exit 1); after the announcement it is an ordinary error line in the log.
// False when READY=1 could not be sent (no descriptor left for the socket, say): a failed
// start-up like any other, so the caller stops what it started and returns 1.
[[nodiscard]] bool announce_serving(const Listener& listener, const ServerContext& context);
bool serving_announced();
// Returns 1, the exit code of a failed start-up.
int startup_failed(const ServerContext& context, std::string_view event, std::string_view cause);
// The first cause given to startup_failed() before the announcement, or "".
std::string startup_failure();

// Once serving is over: "Stopped on SIGTERM" (SIGINT, SIGQUIT) when a signal ended it. An
// --exit-idle quit has its line already, from quit_for_idleness(), when it happened.
void log_why_stopped(const ServerContext& context);

// One line with every counter and the open connections: "Counters (SIGUSR1): accepted 3, ...".
void log_counters(const ServerContext& context, std::string_view when);

// SIGHUP: opens --log-file again (after logrotate renamed it) and re-reads --aphorisms with the
// start-up checks, publishing the new table for each conversation's next question; a table that
// fails them leaves the old one in use. Logs one line saying what was done or what failed (with
// the file and line), prefixed by `who` (prefork's workers name themselves). Never stops anything.
void reload(const ServerContext& context, std::string_view who = {});

// How many reloads this process has done: prefork's parent passes each one on to its workers.
std::uint64_t reloads_done();

// The signals an operator sends a running server without stopping it: SIGUSR1 logs the counters,
// SIGHUP reloads (above). Both are handled on a thread of its own, for as long as it lives.
// Construct it before any other thread: it blocks both signals in the constructing thread, and so
// in every thread (and prefork worker) started after, so none of them is ever interrupted or
// killed by one. fork() waits while it works, and the constructor returns only once the thread
// has started: a fork() during a thread's start-up can hand the child an allocator lock no one
// will release (ASan's allocator is not fork-safe).
class OperatorSignals {
public:
    explicit OperatorSignals(const ServerContext& context, std::string who = {});
    ~OperatorSignals();
    OperatorSignals(const OperatorSignals&) = delete;
    OperatorSignals& operator=(const OperatorSignals&) = delete;

private:
    const ServerContext& context_;
    std::string who_;  // prefixes the reload line
    std::atomic<bool> stopping_{false};
    std::atomic<bool> started_{false};
    std::thread thread_;
};

// After an accept() failed for want of descriptors, how long to stop accepting.
inline constexpr std::chrono::milliseconds accept_pause{100};

// Logs an accept() that brought no client: out of descriptors at most once a second, a broken
// listener always.
void log_accept_problem(const AcceptOutcome& outcome, const ServerContext& context);

// Handles an accept() that brought no client. Out of descriptors: logs at most once a second and
// waits 100 ms (or until stop) so the loop never spins. Returns false when the listener is broken
// and the server should give up.
bool handle_accept_problem(const AcceptOutcome& outcome, const ServerContext& context);

// Threads that run to completion on their own (detached) and can be waited for together.
class ThreadGroup {
public:
    // Starts body on a new thread; an error (no thread could be created) leaves nothing running.
    Result<Ok> start(std::function<void()> body);
    // Returns once every thread started here has finished.
    void wait_all();

private:
    std::mutex mutex_;
    std::condition_variable finished_;
    int running_ = 0;
};

// How threaded and reuseport serve: `count` threads, each running body(i) to its exit code, the
// announcement (announce_serving) once every one exists, then the wait for all of them. A thread
// that cannot start is a failed start-up ("cannot start <what> N: ..."). Returns 0, or 1 when a
// body failed or the start-up did.
int serve_on_threads(int count, std::string_view what, const std::function<int(int)>& body, const Listener& listener,
                     const ServerContext& context);

// Ends the process with exit code 1 if it is still running hard_stop_grace after the drain
// deadline of a stop (a thread stuck in --delay, say). Scope it around the serving. Once a stop
// has come, it calls while_stopping (if given) at once and then every 20 ms until the end: the
// blocking architectures use it to wake threads blocked in recv() and send().
class HardStopWatchdog {
public:
    explicit HardStopWatchdog(const ServerContext& context, std::function<void()> while_stopping = {});
    ~HardStopWatchdog();
    HardStopWatchdog(const HardStopWatchdog&) = delete;
    HardStopWatchdog& operator=(const HardStopWatchdog&) = delete;

private:
    void watch();

    const ServerContext& context_;
    std::function<void()> while_stopping_;
    std::mutex mutex_;
    bool done_ = false;
    Fd done_event_;  // readable once the serving is over: the thread ends at once
    std::thread thread_;
};

}  // namespace zen
