// --metrics HOST:PORT: the HTTP endpoint that serves /metrics, /ready and /live, on a thread of
// its own in the main process, with its own non-blocking poll() loop. It only reads the tracker's
// atomics and the readiness flag, so it never blocks or slows the serving path; a scraper cannot
// hurt clients or other scrapers: at most max_scrapers connections at once (more are closed at
// once), a request head of at most max_request_bytes (431), scrape_timeout per connection, only
// GET (405), 404 for other paths, and every response closes its connection.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "base/result.hpp"
#include "conn/connection_tracker.hpp"
#include "net/listener.hpp"

namespace zen {

inline constexpr std::size_t max_scrapers = 8;
inline constexpr std::size_t max_request_bytes = 8 * 1024;
inline constexpr std::chrono::seconds scrape_timeout{5};

// "HOST:PORT", "[IPv6]:PORT" or ":PORT" (every interface) as host and port; the error is one line.
struct HostPort {
    std::string host;
    std::uint16_t port = 0;
};
Result<HostPort> parse_host_port(std::string_view text);

class MetricsEndpoint {
public:
    // Resolves and binds the address now, so that a bad one stops zen before it listens.
    static Result<std::unique_ptr<MetricsEndpoint>> open(std::string_view host_port, std::string arch);
    ~MetricsEndpoint();
    MetricsEndpoint(const MetricsEndpoint&) = delete;
    MetricsEndpoint& operator=(const MetricsEndpoint&) = delete;

    // "('127.0.0.1', 9100)", the port actually bound.
    const std::string& display() const { return listener_.display; }

    // Serves on its own thread from now until destruction; returns once that thread runs.
    // fork() is safe meanwhile: it waits while the thread works (it may hold the allocator's
    // lock), never while it sleeps in poll(), and a child closes the endpoint's sockets at once.
    void start(const ConnectionTracker& tracker);

private:
    class ScrapeLoop;  // serve()'s scrapers and poll set, in endpoint.cpp

    MetricsEndpoint(Listener listener, std::string arch);
    void serve(const ConnectionTracker& tracker);
    std::string render(const ConnectionTracker& tracker) const;

    Listener listener_;
    std::string arch_;
    double start_time_seconds_;
    std::atomic<bool> started_{false};  // a member: the thread touches it after start() returns
    Fd wake_;  // an eventfd: readable once the endpoint should end
    std::thread thread_;
};

}  // namespace zen
