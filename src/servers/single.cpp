// --arch single: the iterative server (the book's srv_single.py).
//
// Model: one thread accepts a client and converses with it until it leaves; only then does it
// accept the next. Everyone else waits in the kernel's listen backlog (--backlog), which is the
// chapter's point: one slow or idle client stalls every other.
// Blocks: in poll() on the listener (and the signal pipes), then in recv() and send() on the one
// client, in the blocking conversation driver (src/servers/blocking.cpp).
// Connection limit: one at a time by construction.
// EAGAIN/EINTR: the listener is non-blocking; a client that vanished before accept() just sends
// us back to poll(). On the client's socket, EAGAIN means a socket timeout ran out (a deadline
// of its Connection) and EINTR a stop. Short writes: the driver sends until the output is
// empty. EOF: the session answers what came before it.
// EMFILE: logged once a second, retried after 100 ms, never a busy loop.
// Stop: SIGTERM/SIGINT end accepting; the watchdog interrupts the conversation's recv(), which
// answers what has arrived and closes by --drain-timeout, or the watchdog stops the process hard. SIGQUIT and --exit-idle end
// accepting and let the current conversation finish.
#include "servers/blocking.hpp"
#include "runtime/startup.hpp"
#include "runtime/tracing.hpp"
#include "servers/registry.hpp"

namespace zen {

int serve_single(Listener& listener, const ServerContext& context) {
    const BlockingStopWatchdog watchdog(context);
    trace_thread_name(context, "server");
    if (!announce_serving(listener, context)) return 1;
    return accept_loop(listener, context);
}

}  // namespace zen
