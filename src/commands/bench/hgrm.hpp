// The percentile spectrum of a LatencyHistogram in HdrHistogram's .hgrm text format (what
// outputPercentileDistribution prints and wrk2 --latency shows), so HdrHistogram's plotter and
// the scripts written for it read zen bench's latency: a header, one line per percentile step
// (Value, Percentile, TotalCount, 1/(1-Percentile)), steps halving the distance to 100 % five
// ticks at a time, a last line at 100 %, and the #[Mean ...], #[Max ...], #[Buckets ...] footer.
// Values in milliseconds, as wrk2 writes them.
#pragma once

#include <ostream>

#include "commands/bench/latency_histogram.hpp"

namespace zen {

void write_hgrm(std::ostream& out, const LatencyHistogram& histogram);

}  // namespace zen
