// A server's start and end in the log and to systemd: "Listening at ..." and READY=1 once its
// architecture has set itself up, the one cause of a start-up that failed before that, and the
// line that says why it stopped.
#pragma once

#include <string>
#include <string_view>

#include "net/listener.hpp"
#include "runtime/options.hpp"

namespace zen {

// Each architecture calls announce_serving() exactly once, when its own set-up (event loop,
// ring, threads, workers) has succeeded and it is about to serve: only then does systemd hear
// READY=1 and the log say "Listening at ...". A set-up failure before that point goes through
// startup_failed() instead, which keeps the cause for `zen serve` to print as the one line on
// stderr (exit 1); after the announcement it is an ordinary error line in the log.
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

}  // namespace zen
