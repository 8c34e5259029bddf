// The blocking conversation driver: one thread talks to one client from accept to close. Every
// blocking architecture (single today; threaded, per-client and prefork next) calls this and
// differs only in how it gets clients to it.
#pragma once

#include "net/listener.hpp"
#include "servers/server.hpp"

namespace zen {

// Serves the client until it leaves, breaks a limit or times out, or the server stops; then
// closes it and logs how it ended. Waits in poll() with deadlines, so --idle-timeout,
// --question-timeout and SIGTERM all end the wait; the socket itself is non-blocking.
void converse(AcceptedClient client, const ServerContext& context);

}  // namespace zen
