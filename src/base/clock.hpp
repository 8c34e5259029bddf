// The one clock of the tree: monotonic, so deadlines survive changes to the wall clock. Code that
// must be testable without waiting (src/conn/) never reads it: callers pass the time in.
#pragma once

#include <chrono>
#include <string>

namespace zen {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

// A deadline that never comes (a timeout switched off, nothing to wait for).
inline constexpr TimePoint never = TimePoint::max();

// A deadline `limit` after `from`; a zero limit (a timeout switched off) never comes.
inline TimePoint deadline_after(TimePoint from, std::chrono::milliseconds limit) {
    return limit.count() > 0 ? from + limit : never;
}

// "300 s", "500 ms": a limit as the log and messages show it.
inline std::string duration_text(std::chrono::milliseconds duration) {
    const auto ms = duration.count();
    return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
}

}  // namespace zen
