// Counts the open conversations of one server, across its threads or (prefork) its processes,
// so --exit-idle can tell how long the server has had no client. Lock-free atomics are
// address-free, so the tracker works in memory shared by fork()ed workers.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#include "base/result.hpp"

namespace zen {

class ConnectionTracker {
public:
    using Clock = std::chrono::steady_clock;

    ConnectionTracker() : idle_since_ns_(now_ns()) {}

    void opened() { active_.fetch_add(1); }
    void closed() {
        idle_since_ns_.store(now_ns());  // before the decrement: a reader seeing 0 sees a fresh time
        active_.fetch_sub(1);
    }
    int active() const { return active_.load(); }

    // How long no conversation has been open; zero while one is.
    Clock::duration idle_for() const {
        if (active_.load() > 0) return Clock::duration::zero();
        return std::chrono::nanoseconds(now_ns() - idle_since_ns_.load());
    }

private:
    static std::int64_t now_ns() {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
    }

    std::atomic<int> active_{0};
    std::atomic<std::int64_t> idle_since_ns_;
    static_assert(std::atomic<int>::is_always_lock_free && std::atomic<std::int64_t>::is_always_lock_free,
                  "shared between processes, so the atomics must be lock-free");
};

// One tracker in anonymous shared memory (survives fork into every worker); lives until exit.
Result<ConnectionTracker*> create_shared_connection_tracker();

}  // namespace zen
