// --arch threaded: a fixed pool of threads sharing one listener (the book's srv_threaded.py).
//
// Model: --workers N threads (default 4) each run the iterative server's loop: wait for a
// connection on the shared listener, accept it, converse until the client leaves. Up to N
// clients are served at once; client N+1 waits in the listen backlog until a thread is free.
// Blocks: each thread in poll() on the listener (all wake for a connection; one wins accept(),
// the others get EAGAIN and wait again), then in recv() and send() on its client (the blocking
// conversation driver, src/servers/blocking.cpp).
// Connection limit: N at a time by construction.
// EAGAIN/EINTR, short writes, EOF, EMFILE: as --arch single (src/servers/blocking.cpp); an
// EMFILE in one thread does not stop the others.
// Stop: the threads waiting for a client poll the signal pipes; the watchdog interrupts those in
// recv() or send() (SIGURG) until each has seen the stop.
#include "servers/blocking.hpp"
#include "runtime/threads.hpp"


#include "net/io.hpp"
#include "net/signals.hpp"
#include "servers/registry.hpp"

namespace zen {

int serve_threaded(Listener& listener, const ServerContext& context) {
    const BlockingStopWatchdog watchdog(context);
    const int count = context.options.workers > 0 ? context.options.workers : 4;
    return serve_on_threads(
        count, "worker", [&](int) { return accept_loop(listener, context); }, listener, context);
}

}  // namespace zen
