// What the blocking architectures share besides the conversation driver (conversation.hpp):
// waiting for a client, the accept loop, a group of threads to wait for, and the hard stop.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

#include "servers/server.hpp"

namespace zen {

enum class ListenerWake { connection, stop, quit };

// Waits in poll() on the listener and the stop and quit pipes. With --exit-idle it also wakes to
// check the connection tracker and, once the server has had no client for that long and no
// connection waits in the backlog, asks the process to quit (and logs it, once).
ListenerWake wait_for_client(const Listener& listener, const ServerContext& context);

// Accepts one client at a time and converses with it, until a stop or quit: the whole of
// --arch single, and the body of every threaded worker and every prefork worker process.
int accept_loop(Listener& listener, const ServerContext& context);

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

// Ends the process with exit code 1 if it is still running hard_stop_grace after the drain
// deadline of a stop (a thread stuck in --delay, say). Scope it around the serving.
class HardStopWatchdog {
public:
    explicit HardStopWatchdog(const ServerContext& context);
    ~HardStopWatchdog();
    HardStopWatchdog(const HardStopWatchdog&) = delete;
    HardStopWatchdog& operator=(const HardStopWatchdog&) = delete;

private:
    void watch();

    const ServerContext& context_;
    std::mutex mutex_;
    bool done_ = false;
    std::thread thread_;
};

}  // namespace zen
