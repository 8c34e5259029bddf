// Whether an open-loop run kept to its schedule: the offered rate (questions due in the window)
// against the achieved one (right answers), and the queue left at the end. Pure arithmetic, so the
// rule that says "the server fell behind" is tested without a server.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace zen {

struct OpenLoopOutcome {
    std::uint64_t scheduled = 0;   // questions due in the window
    std::uint64_t answered = 0;    // right answers to them, late ones included
    std::uint64_t late = 0;        // of those, answers that came after the window
    std::uint64_t unanswered = 0;  // due in the window, still waiting to be sent (or cut) at the end
    std::int64_t behind_ns = 0;    // the oldest unanswered question's wait at the end of the window
    double seconds = 0;            // the window
};

struct Saturation {
    double offered_rps = 0;
    double achieved_rps = 0;
    bool fell_behind = false;
};

// Fell behind: achieved below 95 % of offered, or at least 1 % of the offered questions (and at
// least 10) still queued when the window closed. Noise of a few answers never trips it.
Saturation judge_saturation(const OpenLoopOutcome& outcome);

// "offered 3,000/s, achieved 850/s: the server fell behind (...)" — one line, no newline.
std::string describe_saturation(const OpenLoopOutcome& outcome, const Saturation& saturation);

}  // namespace zen
