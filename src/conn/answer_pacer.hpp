// --delay and --wait, for a Connection: --delay sleeps here on purpose, in the answering thread
// (on an event loop it stalls every client: the lesson); --wait holds answers until their time,
// one batch after another, as a backend call per question would, while the driver goes on (an
// event loop serves everyone else; a blocking thread waits in recv() for its own client).
#pragma once

#include <cstdint>
#include <limits>
#include <thread>
#include <vector>

#include "base/clock.hpp"
#include "conn/rules.hpp"

namespace zen {

class AnswerPacer {
public:
    AnswerPacer(const ConnectionRules& rules, TimePoint now) : delay_(rules.delay), wait_(rules.wait), next_free_(now) {
        if (wait_.count() == 0) released_end_ = std::numeric_limits<std::uint64_t>::max();
    }

    // `answers` more answers were produced; the output now ends at byte output_end of the
    // conversation (bytes sent plus bytes pending).
    void answered(std::uint64_t answers, std::uint64_t output_end, TimePoint now) {
        if (answers == 0) return;
        if (delay_.count() > 0) std::this_thread::sleep_for(delay_ * answers);
        if (wait_.count() > 0) {
            next_free_ = std::max(next_free_, now) + wait_ * answers;
            held_.push_back({output_end, next_free_});
        }
    }

    // False without --wait: every answer may go as soon as it is made.
    bool holds_answers() const { return wait_.count() > 0; }

    // How many of the `pending` bytes (which start at byte sent_total) may be sent at now.
    // `ended`: the session makes no more answers, and what follows the last paced one (the error
    // answer to a question too long) goes as soon as every answer before it has gone.
    std::size_t releasable(std::uint64_t sent_total, std::size_t pending, TimePoint now, bool ended = false) {
        while (head_ < held_.size() && held_[head_].when <= now) {
            released_end_ = held_[head_].end;
            ++head_;
        }
        if (head_ == held_.size()) {
            held_.clear();  // keeps its capacity: steady --wait traffic allocates nothing
            head_ = 0;
            if (ended) released_end_ = std::numeric_limits<std::uint64_t>::max();
        } else if (head_ >= 64 && head_ * 2 >= held_.size()) {
            held_.erase(held_.begin(), held_.begin() + static_cast<std::ptrdiff_t>(head_));
            head_ = 0;
        }
        const std::uint64_t allowed = released_end_ - std::min(released_end_, sent_total);
        return static_cast<std::size_t>(std::min<std::uint64_t>(allowed, pending));
    }

    // When held answers are next due; max() when none are held.
    TimePoint next_release() const {
        return head_ == held_.size() ? TimePoint::max() : held_[head_].when;
    }

private:
    struct Release {
        std::uint64_t end;
        TimePoint when;
    };
    std::chrono::milliseconds delay_;
    std::chrono::milliseconds wait_;
    TimePoint next_free_;
    // Answers not yet due, from held_[head_] on. A vector, not a deque: an empty std::deque
    // already holds over 500 bytes, and every connection has a pacer.
    std::vector<Release> held_;
    std::size_t head_ = 0;
    std::uint64_t released_end_ = 0;
};

}  // namespace zen
