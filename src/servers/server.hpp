// What every architecture shares: the options of `zen serve`, the context a server runs with,
// the registry of --arch names, and the book's log lines about clients.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/log.hpp"
#include "net/listener.hpp"
#include "proto/aphorisms.hpp"
#include "proto/session.hpp"

namespace zen {

struct ServeOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = 1060;
    std::string arch = "single";
    int backlog = 128;
    std::string aphorisms_path;  // empty: the book's table
    SessionLimits limits;
    std::chrono::milliseconds idle_timeout{300'000};     // zero: never
    std::chrono::milliseconds question_timeout{30'000};  // zero: never
    LogOptions log;
};

// How long a closing connection keeps discarding input so its last answer survives (DESIGN §2).
inline constexpr std::chrono::milliseconds close_linger{1000};
// How long a stopping server keeps flushing answers to one client before closing it anyway.
inline constexpr std::chrono::milliseconds stop_flush_limit{5000};

struct ServerContext {
    const ServeOptions& options;
    const AphorismTable& table;
    Log& log;
};

// Serves until SIGINT/SIGTERM; returns the process exit code.
using ServeFunction = int (*)(Listener& listener, const ServerContext& context);

struct Architecture {
    std::string_view name;
    std::string_view model;  // one line for --help
    ServeFunction serve;
};

const std::vector<Architecture>& architectures();
const Architecture* find_architecture(std::string_view name);

int serve_single(Listener& listener, const ServerContext& context);

// The book's per-client log lines.
void log_accepted(const ServerContext& context, const std::string& peer);
// How the conversation ended: "has closed", "sent b'...' but then closed", "error: question too long".
void log_session_end(const ServerContext& context, const std::string& peer, const Session& session);
void log_client_error(const ServerContext& context, const std::string& peer, std::string_view what);

// Handles an accept() that brought no client. Out of descriptors: logs at most once a second and
// waits 100 ms (or until stop) so the loop never spins. Returns false when the listener is broken
// and the server should give up.
bool handle_accept_problem(const AcceptOutcome& outcome, const ServerContext& context);

}  // namespace zen
