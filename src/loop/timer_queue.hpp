// Deadlines for an event loop: a min-heap of (time, token), and how long the loop's wait may
// sleep. Entries are never removed early; an owner whose deadline moved checks, when a token
// fires, whether it still means anything (and arms again if its next deadline is later). That
// keeps arming O(log n) and needs no handles. The entries left behind by closed clients and
// cancelled timers are dropped once they dominate (drop_stale), so the heap never grows with the
// accept rate.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <queue>
#include <vector>

#include "base/clock.hpp"

namespace zen {

// How long a loop's wait may sleep from `now` until `wake`: zero when it is due, at most `cap`.
// A wake of never waits the whole cap.
inline Clock::duration wait_duration(TimePoint wake, TimePoint now, Clock::duration cap) {
    if (wake <= now) return Clock::duration::zero();
    if (wake == never || wake - now > cap) return cap;
    return wake - now;
}

// The same in the milliseconds of poll() and epoll_wait(), rounded up so the loop never wakes
// just before its deadline and spins: -1 (no timeout) when wake is never.
inline int wait_timeout_ms(TimePoint wake, TimePoint now, std::chrono::milliseconds cap = std::chrono::minutes(1)) {
    if (wake == never) return -1;
    return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait_duration(wake, now, cap)).count());
}

class TimerQueue {
public:
    void arm(TimePoint when, std::uint64_t token) { heap_.push({when, token}); }

    bool empty() const { return heap_.empty(); }
    std::size_t size() const { return heap_.size(); }
    // The earliest deadline; never when there is none.
    TimePoint next() const { return heap_.empty() ? never : heap_.top().when; }

    // The rule of every loop: once the heap holds more than stale_floor entries and more than
    // four for each of the `live` owners that can still have one, every entry `stale(token)`
    // says no longer matters is dropped. Returns whether it compacted.
    template <class Stale>
    bool drop_stale(std::size_t live, Stale&& stale) {
        if (heap_.size() <= stale_floor || heap_.size() <= 4 * (live + 1)) return false;
        std::vector<Entry> kept;
        kept.reserve(heap_.size());
        while (!heap_.empty()) {
            if (!stale(heap_.top().token)) kept.push_back(heap_.top());
            heap_.pop();
        }
        heap_ = Heap(std::greater<>(), std::move(kept));
        return true;
    }

    // Calls fire(when, token) for every entry due at now, earliest first.
    template <class Fire>
    void expire(TimePoint now, Fire&& fire) {
        while (!heap_.empty() && heap_.top().when <= now) {
            const Entry entry = heap_.top();
            heap_.pop();
            fire(entry.when, entry.token);
        }
    }

    // Below this many entries the heap is never compacted: small heaps cost nothing to keep.
    static constexpr std::size_t stale_floor = 1024;

private:
    struct Entry {
        TimePoint when;
        std::uint64_t token;
        bool operator>(const Entry& other) const { return when > other.when; }
    };
    using Heap = std::priority_queue<Entry, std::vector<Entry>, std::greater<>>;
    Heap heap_;
};

}  // namespace zen
