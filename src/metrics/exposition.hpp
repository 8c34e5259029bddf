// The pure half of --metrics: the Prometheus text exposition (format 0.0.4) of a server's
// counters, and the reading of a scraper's HTTP request. No sockets and no clock: tests feed
// them a tracker and bytes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "conn/connection_tracker.hpp"

namespace zen {

inline constexpr std::string_view exposition_content_type = "text/plain; version=0.0.4; charset=utf-8";

// What zen_build_info and the process_ metrics say besides the tracker.
struct ProcessFacts {
    std::string_view version;
    std::string_view commit;
    std::string_view arch;
    double start_time_seconds = 0;  // since the Unix epoch
    double cpu_seconds = 0;         // of this (the main) process
    double resident_bytes = 0;
    double open_fds = 0;
    double max_fds = 0;
};

// Every zen_ metric from the tracker, then zen_build_info and the process_ ones.
std::string render_exposition(const ConnectionTracker& tracker, const ProcessFacts& facts);

// A scraper's request as far as it has come (RequestHeadParser, src/metrics/endpoint.hpp, reads it).
struct ScrapeRequest {
    enum class Status {
        incomplete,  // no empty line yet, and within the size limit
        complete,
        too_large,   // no empty line within the limit: 431
        malformed,   // no "METHOD /path HTTP/1.x" request line: 400
    };
    Status status = Status::incomplete;
    std::string_view method;
    std::string_view path;  // without any query string
};

// What the endpoint answers to a complete request, given whether the server accepts clients.
struct ScrapeResponse {
    int status = 200;
    std::string content_type;
    std::string body;
};
// `metrics` renders the exposition only when /metrics is asked for.
template <typename RenderMetrics>
ScrapeResponse respond_to_scrape(const ScrapeRequest& request, bool accepting, RenderMetrics metrics);

// The bytes of an HTTP/1.1 response that closes the connection.
std::string http_response_bytes(const ScrapeResponse& response);

template <typename RenderMetrics>
ScrapeResponse respond_to_scrape(const ScrapeRequest& request, bool accepting, RenderMetrics metrics) {
    const std::string plain = "text/plain; charset=utf-8";
    switch (request.status) {
        case ScrapeRequest::Status::incomplete:
        case ScrapeRequest::Status::malformed:
            return {400, plain, "bad request\n"};
        case ScrapeRequest::Status::too_large:
            return {431, plain, "request header too large\n"};
        case ScrapeRequest::Status::complete:
            break;
    }
    const bool known = request.path == "/metrics" || request.path == "/ready" || request.path == "/live";
    if (!known) return {404, plain, "not found: try /metrics, /ready or /live\n"};
    if (request.method != "GET") return {405, plain, "only GET\n"};
    if (request.path == "/metrics") return {200, std::string(exposition_content_type), metrics()};
    if (request.path == "/live") return {200, plain, "live\n"};
    if (accepting) return {200, plain, "ready\n"};
    return {503, plain, "not ready: not accepting clients\n"};
}

}  // namespace zen
