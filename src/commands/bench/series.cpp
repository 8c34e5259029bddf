#include "commands/bench/series.hpp"

#include <algorithm>
#include <cmath>

namespace zen {

SecondSeries::Second* SecondSeries::slot(std::size_t second) {
    if (second >= max_seconds) {
        truncated_ = true;
        return nullptr;
    }
    if (second >= seconds_.size()) seconds_.resize(second + 1);
    return &seconds_[second];
}

void SecondSeries::answer(std::size_t second, std::uint64_t latency_ns) {
    if (Second* s = slot(second)) {
        ++s->answers;
        ++s->counts[LatencyHistogram::bucket_of(latency_ns) >> fold_bits];
    }
}

void SecondSeries::error(std::size_t second, std::uint64_t count) {
    if (Second* s = slot(second)) s->errors += count;
}

void SecondSeries::merge(const SecondSeries& other) {
    if (other.seconds_.size() > seconds_.size()) seconds_.resize(other.seconds_.size());
    for (std::size_t i = 0; i < other.seconds_.size(); ++i) {
        Second& mine = seconds_[i];
        const Second& theirs = other.seconds_[i];
        mine.answers += theirs.answers;
        mine.errors += theirs.errors;
        for (std::size_t b = 0; b < coarse_buckets; ++b) mine.counts[b] += theirs.counts[b];
    }
    truncated_ = truncated_ || other.truncated_;
}

std::uint64_t SecondSeries::value_at(std::size_t second, double quantile) const {
    if (second >= seconds_.size() || seconds_[second].answers == 0) return 0;
    const Second& s = seconds_[second];
    const auto rank = std::max<std::uint64_t>(
        1, static_cast<std::uint64_t>(std::ceil(std::clamp(quantile, 0.0, 1.0) * static_cast<double>(s.answers))));
    std::uint64_t seen = 0;
    for (std::size_t b = 0; b < coarse_buckets; ++b) {
        seen += s.counts[b];
        if (seen >= rank) {
            const std::size_t first = b << fold_bits;
            const std::size_t last = std::min(first + (std::size_t{1} << fold_bits), LatencyHistogram::bucket_count) - 1;
            const std::uint64_t low = LatencyHistogram::bucket_low(first);
            return low + (LatencyHistogram::bucket_high(last) - low) / 2;
        }
    }
    return 0;
}

}  // namespace zen
