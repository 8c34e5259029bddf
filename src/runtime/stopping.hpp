// How a server of any architecture stops: the drain deadline after SIGTERM/SIGINT, --exit-idle,
// and the hard stop when a drain overruns. The signals themselves are src/net/signals.hpp.
#pragma once

#include <chrono>
#include <functional>
#include <initializer_list>
#include <mutex>
#include <thread>
#include <vector>

#include "base/clock.hpp"
#include "net/fd.hpp"
#include "runtime/options.hpp"

namespace zen {

// Past the drain deadline, how long before a process still running is stopped hard.
inline constexpr std::chrono::milliseconds hard_stop_grace{500};

// The moment a stopping server closes the connections it is still draining.
TimePoint drain_deadline(const ServerContext& context);

// --exit-idle (src/loop/idle_exit.hpp) for this server: when it may next be due; never when it is
// off or this process does not decide (prefork's workers: their parent does).
TimePoint idle_exit_time(const ServerContext& context, TimePoint now);
// When a loop that found the server not yet due (idle_exit_due) wakes to look again: exact, no
// polling (src/loop/idle_exit.hpp); never when --exit-idle is off or not this process's to decide.
TimePoint idle_exit_wake(const ServerContext& context, TimePoint now);
// True once idle_exit_time() has come and no client waits in any of the listeners' backlogs.
// No allocation: the event loops ask it on every turn.
bool idle_exit_due(const ServerContext& context, std::initializer_list<int> listener_fds, TimePoint now);
bool idle_exit_due(const ServerContext& context, const std::vector<int>& listener_fds, TimePoint now);
// Asks the process to quit for --exit-idle, logging it once.
void quit_for_idleness(const ServerContext& context);

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
