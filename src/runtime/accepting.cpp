#include "runtime/accepting.hpp"

#include <poll.h>

#include <atomic>
#include <cstdint>

#include "net/io.hpp"
#include "net/signals.hpp"

namespace zen {

void log_accept_problem(const AcceptOutcome& outcome, const ServerContext& context) {
    if (outcome.status == AcceptStatus::failed) {
        context.log.server(LogLevel::error, "accept_error", "Cannot accept connections: " + errno_text(outcome.error));
        return;
    }
    if (outcome.status != AcceptStatus::out_of_fds) return;
    static std::atomic<std::int64_t> last_logged{0};
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(Clock::now().time_since_epoch()).count();
    std::int64_t previous = last_logged.load();
    if (now != previous && last_logged.compare_exchange_strong(previous, now)) {
        context.log.server(LogLevel::warning, "accept_error",
                           "Cannot accept a connection: " + errno_text(outcome.error) + " (retrying)");
    }
}

bool handle_accept_problem(const AcceptOutcome& outcome, const ServerContext& context) {
    log_accept_problem(outcome, context);
    if (outcome.status == AcceptStatus::failed) return false;
    if (outcome.status == AcceptStatus::out_of_fds) {
        wait_for(stop_fd(), POLLIN, -1, Clock::now() + accept_pause);
    }
    return true;
}

}  // namespace zen
