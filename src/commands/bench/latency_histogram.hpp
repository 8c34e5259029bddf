// A latency histogram with bounded relative error, in the spirit of HdrHistogram: values below
// 256 ns are counted exactly; above, each power of two is split into 128 buckets, so a reported
// percentile (a bucket's midpoint) is within 0.4 % of the true value. Fixed size (58 KiB), no
// allocation while recording; one per load thread, merged at the end. Not thread-safe.
#pragma once

#include <array>
#include <cstdint>

namespace zen {

class LatencyHistogram {
public:
    void record(std::uint64_t nanoseconds);
    void merge(const LatencyHistogram& other);

    std::uint64_t count() const { return count_; }
    std::uint64_t min() const { return count_ ? min_ : 0; }
    std::uint64_t max() const { return max_; }
    double mean() const { return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0; }

    // The value at quantile q (0..1]: the midpoint of the bucket holding the ceil(q * count)-th
    // smallest value, clamped to [min, max]; the exact maximum for the last rank. 0 when empty.
    std::uint64_t value_at(double quantile) const;

    std::uint64_t count_in(std::size_t bucket) const { return counts_[bucket]; }
    double standard_deviation() const;  // from the buckets' midpoints

    static std::size_t bucket_of(std::uint64_t value);
    static std::uint64_t bucket_low(std::size_t bucket);
    static std::uint64_t bucket_high(std::size_t bucket);  // inclusive

    static constexpr unsigned exact_bits = 8;       // values < 256 have a bucket each
    static constexpr unsigned sub_bucket_bits = 7;  // 128 buckets per power of two above that
    static constexpr std::size_t bucket_count =
        (std::size_t{1} << exact_bits) + (64 - exact_bits) * (std::size_t{1} << sub_bucket_bits);

private:
    std::array<std::uint64_t, bucket_count> counts_{};
    std::uint64_t count_ = 0;
    std::uint64_t sum_ = 0;
    std::uint64_t min_ = UINT64_MAX;
    std::uint64_t max_ = 0;
};

}  // namespace zen
