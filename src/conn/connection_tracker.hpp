// Counts the open conversations of one server, across its threads or (prefork) its processes,
// so --exit-idle can tell how long the server has had no client, and keeps the server's
// counters and its answer-time histogram (SIGUSR1, exit and --metrics report them). Lock-free
// atomics are address-free, so the tracker works in memory shared by fork()ed workers; every
// count is a relaxed fetch_add, so counting costs a serving thread no lock and no wait.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <string_view>

#include "base/clock.hpp"
#include "base/result.hpp"

namespace zen {

// Every way a connection can be counted. Kinds, not totals: a total (all timeouts) is a sum.
enum class Counter : std::size_t {
    accepted,                    // admitted and logged as accepted
    answered,                    // answers produced
    refused_busy,                // turned away at --max-connections
    refused_denied,              // refused by --allow/--deny or the hosts tables
    refused_proxy,               // refused by the PROXY rules: a header from an untrusted peer
    resets,                      // ended in an I/O error (reset, broken pipe) after sending something
    health_checks,               // connected and closed (or reset) having sent nothing
    bytes_received,              // every byte read from clients, PROXY headers included
    bytes_sent,                  // every byte of answers handed to the kernel
    timeout_idle,                // --idle-timeout: silence
    timeout_question,            // --question-timeout: a started question not finished
    timeout_send,                // --send-timeout: answers waiting, none taken
    timeout_proxy_header,        // a trusted proxy sent no whole PROXY header in time
    timeout_drain,               // the server stopped and the drain time ran out
    timeout_keepalive,           // --tcp-keepalive: the kernel's probes of a silent peer went unanswered
    timeout_unacknowledged,      // TCP_USER_TIMEOUT: an answer sent was never acknowledged
    error_question_too_long,     // --max-question exceeded
    error_invalid_proxy_header,  // a trusted proxy's header that is no PROXY header
};
inline constexpr std::size_t counter_kinds = 18;
inline constexpr std::array<std::string_view, counter_kinds> counter_names = {
    "accepted",         "answered",         "refused_busy",         "refused_denied",
    "refused_proxy",    "resets",           "health_checks",        "bytes_received",
    "bytes_sent",       "timeout_idle",     "timeout_question",     "timeout_send",
    "timeout_proxy_header", "timeout_drain", "timeout_keepalive", "timeout_unacknowledged",
    "error_question_too_long", "error_invalid_proxy_header"};
inline constexpr Counter first_timeout = Counter::timeout_idle;
inline constexpr Counter last_timeout = Counter::timeout_unacknowledged;
inline constexpr Counter first_error = Counter::error_question_too_long;
inline constexpr Counter last_error = Counter::error_invalid_proxy_header;

// The answer-time histogram's upper bounds in nanoseconds: 1-2.5-5 steps from 1 µs to 1 s, so
// the microseconds an answer takes on an idle server and the milliseconds of a loaded (or
// --wait) one both land in a bucket of their own; slower answers fall in +Inf.
inline constexpr std::array<std::int64_t, 19> answer_bucket_bounds_ns = {
    1'000,         2'500,         5'000,         10'000,      25'000,      50'000,      100'000,
    250'000,       500'000,       1'000'000,     2'500'000,   5'000'000,   10'000'000,  25'000'000,
    50'000'000,    100'000'000,   250'000'000,   500'000'000, 1'000'000'000};
inline constexpr std::size_t answer_buckets = answer_bucket_bounds_ns.size() + 1;  // the last is +Inf

// The bucket a duration falls in: the first whose bound it does not exceed (Prometheus' `le`).
constexpr std::size_t answer_bucket(std::int64_t ns) {
    std::size_t i = 0;
    while (i < answer_bucket_bounds_ns.size() && ns > answer_bucket_bounds_ns[i]) ++i;
    return i;
}

class ConnectionTracker {
public:
    // Idle since `created` (the server's start), until a conversation opens. Never reads the
    // clock: every time comes from its callers.
    explicit ConnectionTracker(TimePoint created = TimePoint{}) : idle_since_ns_(ns(created)) {}

    void opened() { active_.fetch_add(1); }
    // `at`: when the connection closed, as its owner last saw the clock.
    void closed(TimePoint at) {
        idle_since_ns_.store(ns(at));  // before the decrement: a reader seeing 0 sees a fresh time
        active_.fetch_sub(1);
    }
    int active() const { return active_.load(); }
    // Open conversations the server is draining (it stopped, they have not ended yet).
    void draining(int change) { draining_.fetch_add(change, std::memory_order_relaxed); }
    int draining() const { return draining_.load(std::memory_order_relaxed); }

    void count(Counter counter, std::uint64_t n = 1) {
        counters_[static_cast<std::size_t>(counter)].fetch_add(n, std::memory_order_relaxed);
    }
    std::uint64_t value(Counter counter) const {
        return counters_[static_cast<std::size_t>(counter)].load(std::memory_order_relaxed);
    }
    // The sum of the counters from `first` to `last`, both included.
    std::uint64_t sum(Counter first, Counter last) const {
        std::uint64_t total = 0;
        for (auto i = static_cast<std::size_t>(first); i <= static_cast<std::size_t>(last); ++i)
            total += counters_[i].load(std::memory_order_relaxed);
        return total;
    }

    // `answers` answers that each took `took` of the server's own time.
    void answer_took(Clock::duration took, std::uint64_t answers = 1) {
        const std::int64_t took_ns = std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(took).count());
        answer_counts_[answer_bucket(took_ns)].fetch_add(answers, std::memory_order_relaxed);
        answer_ns_sum_.fetch_add(static_cast<std::uint64_t>(took_ns) * answers, std::memory_order_relaxed);
    }
    // Answers in bucket i alone (not cumulative); i == answer_buckets - 1 is +Inf.
    std::uint64_t answers_in_bucket(std::size_t i) const { return answer_counts_[i].load(std::memory_order_relaxed); }
    std::uint64_t answer_ns_sum() const { return answer_ns_sum_.load(std::memory_order_relaxed); }

    // When the last conversation closed (or the tracker was made); meaningful while active() is 0.
    TimePoint idle_since() const {
        return TimePoint(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(idle_since_ns_.load())));
    }

private:
    static std::int64_t ns(TimePoint at) {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count();
    }

    std::atomic<int> active_{0};
    std::atomic<int> draining_{0};
    std::atomic<std::int64_t> idle_since_ns_;
    std::array<std::atomic<std::uint64_t>, counter_kinds> counters_{};
    std::array<std::atomic<std::uint64_t>, answer_buckets> answer_counts_{};
    std::atomic<std::uint64_t> answer_ns_sum_{0};
    static_assert(std::atomic<int>::is_always_lock_free && std::atomic<std::int64_t>::is_always_lock_free &&
                      std::atomic<std::uint64_t>::is_always_lock_free,
                  "shared between processes, so the atomics must be lock-free");
};

// One tracker in anonymous shared memory (survives fork into every worker), idle since `now`;
// lives until exit.
Result<ConnectionTracker*> create_shared_connection_tracker(TimePoint now);

}  // namespace zen
