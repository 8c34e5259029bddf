// What every zen micro-benchmark shares: a failed check that fails the whole run, items per
// iteration reported as items/s and as time per item, and operator new calls per iteration.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdint>
#include <string>

namespace zen::micro {

// Marks the benchmark as failed (SkipWithError) and makes zen_micro_bench exit 1, so a broken
// core fails ctest and `make bench` instead of posting a fast number. The caller returns at once.
void fail(benchmark::State& state, const std::string& why);

// Sets items/s and `per_item`, the CPU time of one item (a question, a block, a header): the
// benchmark's time per iteration divided by items_per_iteration. Call after the timed loop.
void count_items(benchmark::State& state, std::int64_t items_per_iteration);

// Counts operator new calls from construction to report(), which sets the `allocs` counter to
// their number per iteration. Construct it just before the timed loop. Under a sanitizer,
// whose allocator must not be replaced, nothing is counted and no counter is set.
class AllocationCount {
public:
    AllocationCount();
    void report(benchmark::State& state) const;

private:
    std::uint64_t start_;
};

}  // namespace zen::micro
