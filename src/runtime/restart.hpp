// Zero-downtime restart of a plain process (docs/deploy.md, "Zero-downtime restart"): on SIGUSR2
// the running server starts a new zen from the same path with the same arguments, hands it the
// listening socket as systemd would (fd 3, LISTEN_FDS=1, LISTEN_PID), and waits for the new one's
// READY=1 on a notification socket of its own. Only then does it stop as on SIGTERM (answers what
// has arrived, closes each conversation at a question boundary, exits 0); the socket and the
// connections queued in it live on in the new process. A new process that exits, or is not ready
// within restart_ready_timeout, is stopped and logged, and the old one goes on serving.
// --arch reuseport has no single socket to hand over: the new process binds its own SO_REUSEPORT
// listeners beside the old ones (so the port must be a fixed one, not 0).
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

#include "net/fd.hpp"
#include "runtime/options.hpp"

namespace zen {

// How long a new process has, from fork() to READY=1, before the old one gives up on it.
inline constexpr std::chrono::seconds restart_ready_timeout{10};

// Call once from main(), before anything changes the working directory: the path SIGUSR2 will
// run (made absolute, symlinks kept, so a binary newly installed at that path is what runs) and
// the arguments to give it.
void remember_command_line(int argc, char** argv);

// Waits for SIGUSR2 on a thread of its own for as long as it lives. Construct it before any other
// thread (before OperatorSignals): it blocks SIGUSR2 in the constructing thread, so every
// thread started after leaves the signal to it. Like OperatorSignals, the constructor returns
// once its thread has started, so no prefork fork() lands in a thread's start-up. listener_fd: the socket to hand over, -1 when the
// architecture binds SO_REUSEPORT listeners of its own.
class RestartOnUsr2 {
public:
    RestartOnUsr2(const ServerContext& context, int listener_fd);
    ~RestartOnUsr2();
    RestartOnUsr2(const RestartOnUsr2&) = delete;
    RestartOnUsr2& operator=(const RestartOnUsr2&) = delete;

    // The new process that took over, once it has (for the "Stopped" line); 0 before.
    pid_t successor() const { return successor_.load(); }

private:
    void restart();
    std::string refusal() const;
    std::string wait_until_ready(pid_t child, int notify_fd);

    const ServerContext& context_;
    const int listener_fd_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> started_{false};
    std::atomic<pid_t> successor_{0};
    Fd wake_;  // readable once this object is being destroyed: a wait for a new process ends
    std::thread thread_;
};

}  // namespace zen
