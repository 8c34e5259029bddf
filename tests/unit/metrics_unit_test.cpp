// --metrics' pure half: the histogram's buckets, the exposition text and the reading of a
// scraper's request, fed values and bytes with no socket. promtool checks the real output in
// tests/metrics/metrics_test.py.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "metrics/endpoint.hpp"
#include "metrics/exposition.hpp"

namespace zen {
namespace {

using namespace std::chrono_literals;

TEST(AnswerBuckets, ResolveMicrosecondsUpToASecondIn125Steps) {
    EXPECT_EQ(answer_bucket_bounds_ns.front(), 1'000);
    EXPECT_EQ(answer_bucket_bounds_ns.back(), 1'000'000'000);
    for (std::size_t i = 1; i < answer_bucket_bounds_ns.size(); ++i) {
        const double ratio = static_cast<double>(answer_bucket_bounds_ns[i]) / static_cast<double>(answer_bucket_bounds_ns[i - 1]);
        EXPECT_TRUE(ratio == 2.0 || ratio == 2.5) << i;  // 1 -> 2.5 -> 5 -> 10
    }
    EXPECT_EQ(answer_bucket(0), 0u);
    EXPECT_EQ(answer_bucket(1'000), 0u);  // a bound belongs to its bucket (le)
    EXPECT_EQ(answer_bucket(1'001), 1u);
    EXPECT_EQ(answer_bucket(3'000), 2u);
    EXPECT_EQ(answer_bucket(1'000'000'000), answer_bucket_bounds_ns.size() - 1);
    EXPECT_EQ(answer_bucket(1'000'000'001), answer_buckets - 1);  // +Inf
}

ProcessFacts facts() { return ProcessFacts{.version = "0.1.0", .commit = "abc", .arch = "epoll", .start_time_seconds = 1.5e9}; }

TEST(Exposition, EveryFamilyHasHelpAndTypeAndCountsAreExact) {
    ConnectionTracker tracker;
    tracker.count(Counter::accepted, 3);
    tracker.count(Counter::refused_busy);
    tracker.count(Counter::timeout_idle, 2);
    tracker.count(Counter::error_question_too_long);
    tracker.count(Counter::health_checks, 4);
    tracker.answer_took(3us, 2);
    tracker.answer_took(2s);
    const std::string text = render_exposition(tracker, facts());
    for (const char* line : {
             "# TYPE zen_connections_accepted_total counter\nzen_connections_accepted_total 3\n",
             "zen_connections_refused_total{reason=\"busy\"} 1\n",
             "zen_connections_refused_total{reason=\"denied\"} 0\n",
             "zen_connections_refused_total{reason=\"proxy\"} 0\n",
             "zen_timeouts_total{kind=\"idle\"} 2\n",
             "zen_errors_total{kind=\"question_too_long\"} 1\n",
             "zen_health_checks_total 4\n",
             "# TYPE zen_answer_duration_seconds histogram\n",
             "zen_answer_duration_seconds_bucket{le=\"1e-06\"} 0\n",
             "zen_answer_duration_seconds_bucket{le=\"2.5e-06\"} 0\n",
             "zen_answer_duration_seconds_bucket{le=\"5e-06\"} 2\n",
             "zen_answer_duration_seconds_bucket{le=\"1\"} 2\n",
             "zen_answer_duration_seconds_bucket{le=\"+Inf\"} 3\n",
             "zen_answer_duration_seconds_count 3\n",
             "zen_answer_duration_seconds_sum 2.000006\n",
             "zen_build_info{version=\"0.1.0\",commit=\"abc\",arch=\"epoll\"} 1\n",
             "process_start_time_seconds 1.5e+09\n",
         })
        EXPECT_NE(text.find(line), std::string::npos) << line << "\nin:\n" << text;
    // Every sample line belongs to the family announced just before it.
    std::size_t helps = 0, types = 0;
    for (std::size_t at = 0; (at = text.find("# HELP ", at)) != std::string::npos; ++at) ++helps;
    for (std::size_t at = 0; (at = text.find("# TYPE ", at)) != std::string::npos; ++at) ++types;
    EXPECT_EQ(helps, types);
    EXPECT_EQ(text.back(), '\n');
}

// A head read whole by the endpoint's parser (a malformed or unfinished one has no request).
ScrapeRequest read_scrape_request(std::string_view bytes) {
    RequestHeadParser parser;
    switch (parser.feed(bytes)) {
        case RequestHeadParser::Verdict::complete:
            return parser.request(bytes);
        case RequestHeadParser::Verdict::malformed:
            return {ScrapeRequest::Status::malformed, {}, {}};
        case RequestHeadParser::Verdict::incomplete:
            break;
    }
    return {};
}

TEST(ScrapeRequests, AreReadUpToTheEmptyLine) {
    const auto read = [](std::string_view bytes) { return read_scrape_request(bytes); };
    EXPECT_EQ(read("GET /metrics HTTP/1.1\r\nHost: x\r\n").status, ScrapeRequest::Status::incomplete);
    const ScrapeRequest whole = read("GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(whole.status, ScrapeRequest::Status::complete);
    EXPECT_EQ(whole.method, "GET");
    EXPECT_EQ(whole.path, "/metrics");
    EXPECT_EQ(read("GET /ready HTTP/1.0\n\n").path, "/ready");
    EXPECT_EQ(read("hello\r\n\r\n").status, ScrapeRequest::Status::malformed);
    EXPECT_EQ(read("GET metrics HTTP/1.1\r\n\r\n").status, ScrapeRequest::Status::malformed);
}

// The endpoint's strict reading (RequestHeadParser), fed the head whole and split at every byte:
// the verdict is the same, and a malformed head is malformed as soon as its bad byte is in.
RequestHeadParser::Verdict verdict_fed_in_pieces(std::string_view head, std::size_t piece) {
    RequestHeadParser parser;
    RequestHeadParser::Verdict verdict = RequestHeadParser::Verdict::incomplete;
    for (std::size_t end = std::min(piece, head.size());; end = std::min(end + piece, head.size())) {
        verdict = parser.feed(head.substr(0, end));
        if (end == head.size() || verdict != RequestHeadParser::Verdict::incomplete) return verdict;
    }
}

TEST(StrictScrapeRequests, TakeOnlyHttp1RequestLinesAndWellFormedHeaders) {
    using Verdict = RequestHeadParser::Verdict;
    const std::vector<std::string_view> complete = {
        "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "GET /ready HTTP/1.0\n\n", "GET /metrics?a=b HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.9\r\nUser-Agent: a\tb\r\nAccept:\r\n\r\n", "HEAD /live HTTP/1.1\r\nX-Y: \xc3\xa9\r\n\r\n"};
    const std::vector<std::string_view> malformed = {
        "GET /ready HTTP/1.1 extra\r\n\r\n", "GET /ready HTTP/1.\r\n\r\n", "GET /ready HTTP/1.1junk\r\n\r\n",
        "GET /ready HTTP/2.0\r\n\r\n", "GET  /ready HTTP/1.1\r\n\r\n", "GET /ready  HTTP/1.1\r\n\r\n",
        " GET /ready HTTP/1.1\r\n\r\n", "GET /metrics\r\n", "GET /metrics\n", "GET metrics HTTP/1.1\r\n\r\n",
        std::string_view("GET /re\0ady HTTP/1.1\r\n\r\n", 24), std::string_view("GET /\0", 6),
        "GET /ready HTTP/1.1\r\nHost: a\rb\r\n\r\n", "GET /ready HTTP/1.1\rX\r\n\r\n",
        "GET /ready HTTP/1.1\r\nno colon\r\n\r\n", "GET /ready HTTP/1.1\r\nHost : a\r\n\r\n",
        "GET /ready HTTP/1.1\r\n folded: a\r\n\r\n", "GET /ready HTTP/1.1\r\nA: b\x7f\r\n\r\n",
        "G\x01T /ready HTTP/1.1\r\n\r\n", "GET /r\xc3\xa9 HTTP/1.1\r\n\r\n", "GET /ready HTTP/1.1\r\n\r\r\n"};
    for (std::size_t piece = 1; piece <= 64; piece = piece < 4 ? piece + 1 : piece * 4) {
        for (const std::string_view head : complete) {
            EXPECT_EQ(verdict_fed_in_pieces(head, piece), Verdict::complete) << head << " in pieces of " << piece;
        }
        for (const std::string_view head : malformed) {
            EXPECT_EQ(verdict_fed_in_pieces(head, piece), Verdict::malformed) << head << " in pieces of " << piece;
        }
    }
    // Unfinished but fine so far: wait for more. Unfinished and already wrong: malformed now.
    for (const std::string_view head : {"GET", "GET /metrics", "GET /metrics HTTP/1.", "GET /metrics HTTP/1.1\r\nHo"}) {
        RequestHeadParser parser;
        EXPECT_EQ(parser.feed(head), Verdict::incomplete) << head;
    }
    for (const std::string_view head : {"GET /metrics HTTP/1.1 ", "GET /metrics HTTP/3", "GET\t"}) {
        RequestHeadParser parser;
        EXPECT_EQ(parser.feed(head), Verdict::malformed) << head;
    }
    const std::string head = "GET /metrics?x=1 HTTP/1.1\r\nHost: x\r\n\r\nleft over";
    RequestHeadParser parser;
    ASSERT_EQ(parser.feed(head), Verdict::complete);
    EXPECT_EQ(parser.consumed(), head.find("left"));
    const ScrapeRequest request = parser.request(head);
    EXPECT_EQ(request.status, ScrapeRequest::Status::complete);
    EXPECT_EQ(request.method, "GET");
    EXPECT_EQ(request.path, "/metrics");
}

TEST(ScrapeRequests, GetAnswersByPathAndReadiness) {
    const auto status = [](std::string_view bytes, bool accepting) {
        return respond_to_scrape(read_scrape_request(bytes), accepting, [] { return std::string("m"); }).status;
    };
    EXPECT_EQ(status("GET /metrics HTTP/1.1\r\n\r\n", true), 200);
    EXPECT_EQ(status("GET /ready HTTP/1.1\r\n\r\n", true), 200);
    EXPECT_EQ(status("GET /ready HTTP/1.1\r\n\r\n", false), 503);
    EXPECT_EQ(status("GET /live HTTP/1.1\r\n\r\n", false), 200);
    EXPECT_EQ(status("POST /metrics HTTP/1.1\r\n\r\n", true), 405);
    EXPECT_EQ(status("GET /other HTTP/1.1\r\n\r\n", true), 404);
    EXPECT_EQ(status("nonsense\r\n\r\n", true), 400);
    const std::string bytes = http_response_bytes({200, std::string(exposition_content_type), "body"});
    EXPECT_EQ(bytes,
              "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: 4\r\n"
              "Connection: close\r\n\r\nbody");
}

TEST(MetricsAddress, IsHostColonPort) {
    EXPECT_EQ(parse_host_port("127.0.0.1:9100")->host, "127.0.0.1");
    EXPECT_EQ(parse_host_port("127.0.0.1:9100")->port, 9100);
    EXPECT_EQ(parse_host_port("[::1]:0")->host, "::1");
    EXPECT_EQ(parse_host_port(":9100")->host, "");
    EXPECT_FALSE(parse_host_port("9100"));
    EXPECT_FALSE(parse_host_port("localhost:http"));
    EXPECT_FALSE(parse_host_port("localhost:70000"));
}

}  // namespace
}  // namespace zen
