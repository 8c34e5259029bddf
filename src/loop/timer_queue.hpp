// Deadlines for an event loop: a min-heap of (time, token). Entries are never removed early; an
// owner whose deadline moved checks, when a token fires, whether it still means anything (and
// arms again if its next deadline is later). That keeps arming O(log n) and needs no handles.
#pragma once

#include <chrono>

#include "base/clock.hpp"
#include <cstdint>
#include <functional>
#include <queue>
#include <vector>

namespace zen {

class TimerQueue {
public:
    void arm(TimePoint when, std::uint64_t token) { heap_.push({when, token}); }

    bool empty() const { return heap_.empty(); }
    std::size_t size() const { return heap_.size(); }

    // Drops every entry whose token `stale` says no longer matters (cancelled timers), so that
    // a loop that cancels often keeps a heap the size of its live timers.
    template <class Stale>
    void compact(Stale&& stale) {
        std::vector<Entry> kept;
        kept.reserve(heap_.size());
        while (!heap_.empty()) {
            if (!stale(heap_.top().token)) kept.push_back(heap_.top());
            heap_.pop();
        }
        for (const Entry& entry : kept) heap_.push(entry);
    }
    TimePoint next() const { return heap_.empty() ? TimePoint::max() : heap_.top().when; }

    // Milliseconds an event wait may sleep before the next deadline (-1: no deadline), capped.
    int wait_ms(TimePoint now, int cap_ms = 1000) const;

    // Calls fire(when, token) for every entry due at now, earliest first.
    template <class Fire>
    void expire(TimePoint now, Fire&& fire) {
        while (!heap_.empty() && heap_.top().when <= now) {
            const Entry entry = heap_.top();
            heap_.pop();
            fire(entry.when, entry.token);
        }
    }

private:
    struct Entry {
        TimePoint when;
        std::uint64_t token;
        bool operator>(const Entry& other) const { return when > other.when; }
    };
    std::priority_queue<Entry, std::vector<Entry>, std::greater<>> heap_;
};

inline int TimerQueue::wait_ms(TimePoint now, int cap_ms) const {
    if (heap_.empty()) return cap_ms;
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(heap_.top().when - now).count();
    if (left <= 0) return 0;
    return left < cap_ms ? static_cast<int>(left) : cap_ms;
}

}  // namespace zen
