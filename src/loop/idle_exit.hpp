// The rule of --exit-idle, written once for every loop: a server may exit once it has had no
// open conversation for `limit`. When it may next be due is exact, so a loop sleeps until then
// instead of polling: `limit` after the last conversation closed, or, while one is open, `limit`
// from now (none can close before now, so no exit can fall earlier; the loop looks again then).
// Sans-I/O: the caller passes the time.
#pragma once

#include <chrono>

#include "base/clock.hpp"
#include "conn/connection_tracker.hpp"

namespace zen {

// never when limit is zero (--exit-idle off).
inline TimePoint idle_exit_time(const ConnectionTracker& tracker, std::chrono::milliseconds limit, TimePoint now) {
    if (limit.count() <= 0) return never;
    return (tracker.active() > 0 ? now : tracker.idle_since()) + limit;
}

// When a loop that found the server not yet due looks again: idle_exit_time() while it lies
// ahead. Once that has passed with the server still running, a client was waiting in a backlog:
// its conversation opens now and cannot end before now, so `limit` from now. never when off.
inline TimePoint idle_exit_next_check(const ConnectionTracker& tracker, std::chrono::milliseconds limit,
                                      TimePoint now) {
    const TimePoint due = idle_exit_time(tracker, limit, now);
    return due > now || due == never ? due : now + limit;
}

}  // namespace zen
