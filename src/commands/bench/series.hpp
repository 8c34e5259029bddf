// The run second by second, for --json's "series": answers, errors and a coarse latency histogram
// per second of the window (an answer counts in the second it arrived). Each second's histogram
// folds LatencyHistogram's 128 buckets per power of two into 8, so its percentiles are within
// about 3 % and a second costs under 2 KiB; the series stops growing after max_seconds. One per
// load thread, merged at the end. Not thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "commands/bench/latency_histogram.hpp"

namespace zen {

class SecondSeries {
public:
    static constexpr unsigned fold_bits = 4;  // 16 fine buckets make one coarse bucket
    static constexpr std::size_t coarse_buckets = (LatencyHistogram::bucket_count >> fold_bits) + 1;
    static constexpr std::size_t max_seconds = 3600;

    struct Second {
        std::uint64_t answers = 0;
        std::uint64_t errors = 0;
        std::array<std::uint32_t, coarse_buckets> counts{};
    };

    void answer(std::size_t second, std::uint64_t latency_ns);
    void error(std::size_t second, std::uint64_t count);
    void merge(const SecondSeries& other);

    std::size_t size() const { return seconds_.size(); }
    const Second& at(std::size_t second) const { return seconds_[second]; }
    // The latency at quantile q (0..1] of that second's answers: a coarse bucket's midpoint; 0 when none.
    std::uint64_t value_at(std::size_t second, double quantile) const;
    bool truncated() const { return truncated_; }

private:
    Second* slot(std::size_t second);

    std::vector<Second> seconds_;
    bool truncated_ = false;
};

}  // namespace zen
