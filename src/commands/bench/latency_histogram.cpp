#include "commands/bench/latency_histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace zen {

namespace {
constexpr std::uint64_t exact_limit = std::uint64_t{1} << LatencyHistogram::exact_bits;
constexpr std::size_t sub_buckets = std::size_t{1} << LatencyHistogram::sub_bucket_bits;
}  // namespace

std::size_t LatencyHistogram::bucket_of(std::uint64_t value) {
    if (value < exact_limit) return static_cast<std::size_t>(value);
    const unsigned exponent = 63u - static_cast<unsigned>(std::countl_zero(value));  // >= exact_bits
    const std::uint64_t sub = (value >> (exponent - sub_bucket_bits)) & (sub_buckets - 1);
    return exact_limit + (exponent - exact_bits) * sub_buckets + static_cast<std::size_t>(sub);
}

std::uint64_t LatencyHistogram::bucket_low(std::size_t bucket) {
    if (bucket < exact_limit) return bucket;
    const std::size_t above = bucket - exact_limit;
    const unsigned exponent = exact_bits + static_cast<unsigned>(above / sub_buckets);
    const std::uint64_t sub = above % sub_buckets;
    return (std::uint64_t{1} << exponent) | (sub << (exponent - sub_bucket_bits));
}

std::uint64_t LatencyHistogram::bucket_high(std::size_t bucket) {
    if (bucket < exact_limit) return bucket;
    const unsigned exponent = exact_bits + static_cast<unsigned>((bucket - exact_limit) / sub_buckets);
    return bucket_low(bucket) + (std::uint64_t{1} << (exponent - sub_bucket_bits)) - 1;
}

void LatencyHistogram::record(std::uint64_t nanoseconds) {
    ++counts_[bucket_of(nanoseconds)];
    ++count_;
    sum_ += nanoseconds;
    min_ = std::min(min_, nanoseconds);
    max_ = std::max(max_, nanoseconds);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
    for (std::size_t i = 0; i < bucket_count; ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    sum_ += other.sum_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
}

std::uint64_t LatencyHistogram::value_at(double quantile) const {
    if (count_ == 0) return 0;
    quantile = std::clamp(quantile, 0.0, 1.0);
    const auto rank = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(std::ceil(quantile * static_cast<double>(count_))));
    if (rank >= count_) return max_;  // the largest value is known exactly
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
        seen += counts_[i];
        if (seen >= rank) {
            const std::uint64_t low = bucket_low(i);
            const std::uint64_t middle = low + (bucket_high(i) - low) / 2;
            return std::clamp(middle, min(), max_);
        }
    }
    return max_;
}

double LatencyHistogram::standard_deviation() const {
    if (count_ == 0) return 0;
    const double average = mean();
    double squares = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
        if (counts_[i] == 0) continue;
        const double middle = static_cast<double>(bucket_low(i)) + static_cast<double>(bucket_high(i) - bucket_low(i)) / 2;
        squares += static_cast<double>(counts_[i]) * (middle - average) * (middle - average);
    }
    return std::sqrt(squares / static_cast<double>(count_));
}

}  // namespace zen
