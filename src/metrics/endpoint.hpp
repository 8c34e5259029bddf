// --metrics HOST:PORT: the HTTP endpoint that serves /metrics, /ready and /live, on a thread of
// its own in the main process, with its own non-blocking poll() loop. It only reads the tracker's
// atomics and the readiness flag, so it never blocks or slows the serving path; a scraper cannot
// hurt clients or other scrapers: at most max_scrapers connections at once, at most
// max_scrapers_per_address of them from one address, new ones from an address that wasted
// scraper_burst connections (no request) only at scraper_rate_per_second, and when a newcomer finds no slot free the
// connection that has waited longest without a complete request makes room for it (as does one
// already answered); a request head of at most max_request_bytes (431), read strictly (400 at the
// first byte that breaks HTTP/1.x's grammar), complete within request_head_timeout of the accept;
// scrape_timeout per connection, only GET (405), 404 for other paths, and every response closes
// its connection.
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
#include "metrics/exposition.hpp"
#include "net/listener.hpp"

namespace zen {

inline constexpr std::size_t max_scrapers = 8;
inline constexpr std::size_t max_request_bytes = 8 * 1024;
inline constexpr std::size_t max_scrapers_per_address = 4;
// Connections one address may waste (ended with no complete request: cut, evicted, gone): a
// burst of this many, then scraper_rate_per_second (nginx's limit_req, haproxy's conn_rate, but
// counting only the wasted ones, so a scraper or a health check never pays). An address out of
// them has its new connections closed at once, taking no slot.
inline constexpr double scraper_burst = 20;
inline constexpr double scraper_rate_per_second = 10;
inline constexpr std::chrono::seconds scrape_timeout{5};
// haproxy's `timeout http-request`, nginx's `client_header_timeout`: a scraper sends its whole
// request at once; one that has not within this is cut (408 is not sent: it asked for nothing).
inline constexpr std::chrono::seconds request_head_timeout{2};

// The request head of a scrape, read strictly and byte by byte as it arrives (RFC 9112's
// grammar, the part a scrape needs): `METHOD SP /target SP HTTP/1.DIGIT` then CRLF or LF,
// exactly one space each, a method of token characters, a target of visible ASCII starting
// with '/', header lines `name: value` (a token name right before the colon, a value of
// visible characters, spaces and tabs; no folding), and an empty line. No NUL or other control
// character anywhere but a tab in a value, no CR but before LF. malformed at the first byte
// that cannot belong to such a head, so a bad request is answered at once, whole or not; an
// HTTP/0.9 line (no version) is malformed at its line end.
class RequestHeadParser {
public:
    enum class Verdict { incomplete, complete, malformed };
    // `head` is every byte received so far (the same bytes again plus the new ones): reading
    // goes on where the last call stopped. After complete or malformed, the same verdict.
    Verdict feed(std::string_view head);
    // Once complete: the request, its method and path (without the query) pointing into `head`.
    ScrapeRequest request(std::string_view head) const;
    // How many bytes of the head have been read.
    std::size_t consumed() const { return consumed_; }

private:
    enum class State {
        method, target_start, target, version, version_digit, line_end, line_lf,
        header_start, header_name, header_value, header_lf, final_lf, complete, malformed
    };
    State step(unsigned char c, std::size_t at);

    State state_ = State::method;
    std::size_t consumed_ = 0;
    std::size_t method_end_ = 0;
    std::size_t target_begin_ = 0;
    std::size_t target_end_ = 0;
    std::size_t version_matched_ = 0;
};

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
