#include "commands/bench/hgrm.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace zen {

namespace {

constexpr int ticks_per_half_distance = 5;
constexpr double nanoseconds_per_unit = 1e6;  // milliseconds

void line(std::ostream& out, const char* format, auto... values) {
    char text[160];
    std::snprintf(text, sizeof text, format, values...);
    out << text;
}

// The next percentile to report: ticks_per_half_distance steps to halve the distance to 100.
double next_percentile(double percentile) {
    const double halvings = std::floor(std::log2(100.0 / (100.0 - percentile))) + 1;
    return percentile + 100.0 / (ticks_per_half_distance * std::pow(2.0, halvings));
}

}  // namespace

void write_hgrm(std::ostream& out, const LatencyHistogram& histogram) {
    line(out, "%12s %14s %10s %14s\n\n", "Value", "Percentile", "TotalCount", "1/(1-Percentile)");
    const std::uint64_t total = histogram.count();
    const auto value_of = [&](std::size_t bucket) {
        return static_cast<double>(std::min(LatencyHistogram::bucket_high(bucket), histogram.max())) /
               nanoseconds_per_unit;
    };
    if (total > 0) {
        double percentile = 0;
        std::uint64_t seen = 0;
        std::size_t last = 0;
        for (std::size_t bucket = 0; bucket < LatencyHistogram::bucket_count && seen < total; ++bucket) {
            const std::uint64_t count = histogram.count_in(bucket);
            if (count == 0) continue;
            seen += count;
            last = bucket;
            const double reached = 100.0 * static_cast<double>(seen) / static_cast<double>(total);
            while (percentile <= reached) {
                line(out, "%12.6f %2.12f %10llu %14.2f\n", value_of(bucket), percentile / 100.0,
                     static_cast<unsigned long long>(seen), 1.0 / (1.0 - percentile / 100.0));
                percentile = next_percentile(percentile);
                if (seen == total) break;  // then the last value's own line, at 100 %
            }
        }
        line(out, "%12.6f %2.12f %10llu %14s\n", value_of(last), 1.0, static_cast<unsigned long long>(total), "inf");
    }
    line(out, "#[Mean    = %12.6f, StdDeviation   = %12.6f]\n", histogram.mean() / nanoseconds_per_unit,
         histogram.standard_deviation() / nanoseconds_per_unit);
    line(out, "#[Max     = %12.6f, Total count    = %12llu]\n",
         static_cast<double>(histogram.max()) / nanoseconds_per_unit, static_cast<unsigned long long>(total));
    line(out, "#[Buckets = %12d, SubBuckets     = %12d]\n", static_cast<int>(64 - LatencyHistogram::exact_bits + 1),
         1 << LatencyHistogram::sub_bucket_bits);
}

}  // namespace zen
