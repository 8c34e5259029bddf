// --arch single: the iterative server (the book's srv_single.py).
//
// Model: one thread accepts a client and converses with it until it leaves; only then does it
// accept the next. Everyone else waits in the kernel's listen backlog (--backlog), which is the
// chapter's point: one slow or idle client stalls every other.
// Blocks: in poll() on the listener (and the stop pipe), then in the conversation driver's
// poll() on the one client (src/servers/conversation.cpp).
// Connection limit: one at a time by construction.
// EAGAIN/EINTR: the listener is non-blocking; a client that vanished before accept() just sends
// us back to poll(); EINTR is retried inside the I/O helpers. Short writes: the driver sends
// until the session's output is empty. EOF: the session answers what came before it.
// EMFILE: logged once a second, retried after 100 ms, never a busy loop.
#include <poll.h>

#include "net/io.hpp"
#include "net/signals.hpp"
#include "servers/conversation.hpp"
#include "servers/server.hpp"

namespace zen {

int serve_single(Listener& listener, const ServerContext& context) {
    for (;;) {
        if (wait_for(listener.fd.get(), POLLIN, stop_fd(), Clock::time_point::max()) == WaitOutcome::stopped) {
            return 0;
        }
        AcceptOutcome accepted = accept_client(listener.fd.get());
        if (accepted.status == AcceptStatus::accepted) {
            converse(std::move(accepted.client), context);
            if (stop_requested()) return 0;
        } else if (!handle_accept_problem(accepted, context)) {
            return 1;
        }
    }
}

}  // namespace zen
