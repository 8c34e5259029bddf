// accept() that brought no client, handled alike in every architecture: out of descriptors is
// logged at most once a second and accepting pauses (never a busy loop); a broken listener is
// logged and ends the server.
#pragma once

#include <chrono>

#include "net/listener.hpp"
#include "runtime/options.hpp"

namespace zen {

// After an accept() failed for want of descriptors, how long to stop accepting.
inline constexpr std::chrono::milliseconds accept_pause{100};

// Logs an accept() that brought no client: out of descriptors at most once a second, a broken
// listener always.
void log_accept_problem(const AcceptOutcome& outcome, const ServerContext& context);

// For a thread that blocks: logs (as above), and out of descriptors waits accept_pause (or until
// stop). Returns false when the listener is broken and the server should give up.
bool handle_accept_problem(const AcceptOutcome& outcome, const ServerContext& context);

}  // namespace zen
