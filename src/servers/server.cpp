#include "servers/server.hpp"

#include <poll.h>

#include <atomic>

#include "net/io.hpp"
#include "net/signals.hpp"
#include "proto/bytes_repr.hpp"

namespace zen {

const std::vector<Architecture>& architectures() {
    static const std::vector<Architecture> all = {
        {"single", "one client at a time; others wait in the listen backlog (srv_single.py)", serve_single},
        {"threaded", "--workers threads, each accepting and serving one client at a time (srv_threaded.py)",
         serve_threaded},
        {"per-client", "a new thread for every connection (srv_legacy1.py, socketserver)", serve_per_client},
        {"prefork", "--workers processes sharing the listener, replaced when they die (server_multi.py)",
         serve_prefork},
    };
    return all;
}

const Architecture* find_architecture(std::string_view name) {
    for (const Architecture& architecture : architectures()) {
        if (architecture.name == name) return &architecture;
    }
    return nullptr;
}

std::string duration_text(std::chrono::milliseconds duration) {
    const auto ms = duration.count();
    return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
}

Clock::time_point drain_deadline(const ServerContext& context) {
    return stop_time() + context.options.drain_timeout;
}

void log_accepted(const ServerContext& context, const std::string& peer) {
    context.log.connection(LogLevel::info, "accepted", peer, "Accepted connection from " + peer);
}

void log_client_error(const ServerContext& context, const std::string& peer, std::string_view what) {
    context.log.connection(LogLevel::warning, "client_error", peer,
                           "Client " + peer + " error: " + std::string(what));
}

void log_session_end(const ServerContext& context, const std::string& peer, const Session& session) {
    switch (session.status()) {
        case Session::Status::open:
        case Session::Status::finished:
            context.log.connection(LogLevel::info, "closed", peer, "Client socket to " + peer + " has closed");
            return;
        case Session::Status::partial_at_eof:
            context.log.connection(LogLevel::info, "closed_mid_question", peer,
                                   "Client " + peer + " sent " + bytes_repr(session.unanswered_bytes()) +
                                       " but then closed");
            return;
        case Session::Status::too_long:
            log_client_error(context, peer,
                             "question too long (over " + std::to_string(context.options.limits.max_question) +
                                 " bytes)");
            return;
    }
}

bool handle_accept_problem(const AcceptOutcome& outcome, const ServerContext& context) {
    switch (outcome.status) {
        case AcceptStatus::accepted:
        case AcceptStatus::would_block:
        case AcceptStatus::client_gone:
            return true;
        case AcceptStatus::out_of_fds: {
            static std::atomic<std::int64_t> last_logged{0};
            const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                                 Clock::now().time_since_epoch()).count();
            std::int64_t previous = last_logged.load();
            if (now != previous && last_logged.compare_exchange_strong(previous, now)) {
                context.log.server(LogLevel::warning, "accept_error",
                                   "Cannot accept a connection: " + errno_text(outcome.error) + " (retrying)");
            }
            wait_for(stop_fd(), POLLIN, -1, Clock::now() + std::chrono::milliseconds(100));
            return true;
        }
        case AcceptStatus::failed:
            context.log.server(LogLevel::error, "accept_error",
                               "Cannot accept connections: " + errno_text(outcome.error));
            return false;
    }
    return false;
}

}  // namespace zen
