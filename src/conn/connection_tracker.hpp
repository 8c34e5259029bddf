// Counts the open conversations of one server, across its threads or (prefork) its processes,
// so --exit-idle can tell how long the server has had no client, and keeps the server's
// counters (SIGUSR1 and exit print them). Lock-free atomics are address-free, so the tracker
// works in memory shared by fork()ed workers.
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

enum class Counter : std::size_t {
    accepted,         // admitted and logged as accepted
    answered,         // answers produced
    refused_busy,     // turned away at --max-connections
    refused_denied,   // refused by --allow/--deny, the hosts tables or the PROXY rules
    timeouts,         // closed by --idle-timeout, --question-timeout, --send-timeout, the header timeout
    protocol_errors,  // questions too long, invalid PROXY headers
    resets,           // connections that ended in an I/O error (reset, broken pipe)
};
inline constexpr std::size_t counter_kinds = 7;
inline constexpr std::array<std::string_view, counter_kinds> counter_names = {
    "accepted", "answered", "refused_busy", "refused_denied", "timeouts", "protocol_errors", "resets"};

class ConnectionTracker {
public:
    ConnectionTracker() : idle_since_ns_(ns(Clock::now())) {}

    void opened() { active_.fetch_add(1); }
    // `at`: when the connection closed, as its owner last saw the clock.
    void closed(TimePoint at) {
        idle_since_ns_.store(ns(at));  // before the decrement: a reader seeing 0 sees a fresh time
        active_.fetch_sub(1);
    }
    int active() const { return active_.load(); }

    void count(Counter counter, std::uint64_t n = 1) {
        counters_[static_cast<std::size_t>(counter)].fetch_add(n, std::memory_order_relaxed);
    }
    std::uint64_t value(Counter counter) const {
        return counters_[static_cast<std::size_t>(counter)].load(std::memory_order_relaxed);
    }

    // How long no conversation has been open; zero while one is.
    Clock::duration idle_for() const {
        if (active_.load() > 0) return Clock::duration::zero();
        return std::chrono::nanoseconds(std::max<std::int64_t>(0, ns(Clock::now()) - idle_since_ns_.load()));
    }

private:
    static std::int64_t ns(TimePoint at) {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count();
    }

    std::atomic<int> active_{0};
    std::atomic<std::int64_t> idle_since_ns_;
    std::array<std::atomic<std::uint64_t>, counter_kinds> counters_{};
    static_assert(std::atomic<int>::is_always_lock_free && std::atomic<std::int64_t>::is_always_lock_free &&
                      std::atomic<std::uint64_t>::is_always_lock_free,
                  "shared between processes, so the atomics must be lock-free");
};

// One tracker in anonymous shared memory (survives fork into every worker); lives until exit.
Result<ConnectionTracker*> create_shared_connection_tracker();

}  // namespace zen
