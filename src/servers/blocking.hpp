// The blocking architectures' common parts: waiting for a client, the accept loop, and the
// blocking conversation driver, in which one thread talks to one client from accept to close
// (the book's zen_utils.handle_conversation, which srv_single.py, srv_threaded.py and
// srv_legacy1.py all call).
#pragma once

#include "net/listener.hpp"
#include "net/listener.hpp"
#include "runtime/options.hpp"
#include "runtime/stopping.hpp"
#include "runtime/options.hpp"

namespace zen {

enum class ListenerWake { connection, stop, quit };

// Waits in poll() on the listener and the stop and quit pipes. With --exit-idle it also wakes when
// the server may be due to exit (runtime/stopping.hpp) and, once it has had no client for that
// long and no connection waits in the backlog, asks the process to quit (and logs it, once).
ListenerWake wait_for_client(const Listener& listener, const ServerContext& context);

// Accepts one client at a time and converses with it, until a stop or quit: the whole of
// --arch single, and the body of every threaded worker and every prefork worker process.
int accept_loop(Listener& listener, const ServerContext& context);

// Serves one client on this thread until the conversation ends, blocked in recv() and send() on
// its socket (which must be in blocking mode). Deadlines reach those calls as socket timeouts
// (SO_RCVTIMEO, SO_SNDTIMEO); a stop reaches them as a signal from the watchdog below.
void converse(AcceptedClient client, const ServerContext& context);

// The hard-stop watchdog of a blocking server: once the server stops, it interrupts every
// conversation blocked in recv() or send() (SIGURG, whose handler restarts every other call) until
// each has seen the stop. Scope it around the serving, as HardStopWatchdog.
class BlockingStopWatchdog {
public:
    explicit BlockingStopWatchdog(const ServerContext& context);

private:
    HardStopWatchdog watchdog_;
};

// inetd nowait, systemd Accept=yes: the one client passed on fd 0, served as a blocking server
// would, then the process exits.
void serve_one(AcceptedClient client, const ServerContext& context);

}  // namespace zen
