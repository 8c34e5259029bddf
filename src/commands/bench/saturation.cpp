#include "commands/bench/saturation.hpp"

#include <algorithm>
#include <cmath>

#include "commands/bench/units.hpp"

namespace zen {

Saturation judge_saturation(const OpenLoopOutcome& outcome) {
    Saturation saturation;
    if (outcome.seconds <= 0) return saturation;
    saturation.offered_rps = static_cast<double>(outcome.scheduled) / outcome.seconds;
    saturation.achieved_rps = static_cast<double>(outcome.answered) / outcome.seconds;
    const std::uint64_t queue_limit = std::max<std::uint64_t>(10, outcome.scheduled / 100);
    saturation.fell_behind = outcome.scheduled > 0 && (static_cast<double>(outcome.answered) <
                                                           0.95 * static_cast<double>(outcome.scheduled) ||
                                                       outcome.unanswered >= queue_limit);
    return saturation;
}

std::string describe_saturation(const OpenLoopOutcome& outcome, const Saturation& saturation) {
    const auto rate = [](double value) { return grouped(static_cast<std::uint64_t>(std::llround(value))) + "/s"; };
    std::string text = "offered " + rate(saturation.offered_rps) + ", achieved " + rate(saturation.achieved_rps);
    if (saturation.fell_behind) {
        text += ": the server fell behind (" + grouped(outcome.unanswered) + " due but never sent, " +
                scaled_duration(static_cast<double>(outcome.behind_ns)) + " behind schedule at the end, " +
                grouped(outcome.late) + " answered after the window)";
    } else {
        text += ": the server kept up (" + grouped(outcome.late) + " answered after the window)";
    }
    return text;
}

}  // namespace zen
