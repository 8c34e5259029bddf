// zen_micro_bench: Google Benchmark's main, plus what its stock main lacks: exit status 1 when
// any benchmark failed its correctness check, and a count of operator new calls (the `allocs`
// counter), so an allocation on a hot path shows in the report.
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <new>

#include "micro.hpp"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define ZEN_MICRO_COUNT_ALLOCATIONS 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define ZEN_MICRO_COUNT_ALLOCATIONS 0
#endif
#endif
#ifndef ZEN_MICRO_COUNT_ALLOCATIONS
#define ZEN_MICRO_COUNT_ALLOCATIONS 1
#endif

namespace {

std::atomic<std::uint64_t> allocations{0};
std::atomic<int> failures{0};

}  // namespace

#if ZEN_MICRO_COUNT_ALLOCATIONS
// Replacements of the global allocation functions; libstdc++'s array and nothrow forms call
// these. Aligned forms are not counted (nothing in zen uses over-aligned types).
void* operator new(std::size_t size) {
    allocations.fetch_add(1, std::memory_order_relaxed);
    if (void* memory = std::malloc(size == 0 ? 1 : size)) return memory;
    throw std::bad_alloc();
}
void operator delete(void* memory) noexcept { std::free(memory); }
void operator delete(void* memory, std::size_t) noexcept { std::free(memory); }
#endif

namespace zen::micro {

void fail(benchmark::State& state, const std::string& why) {
    failures.fetch_add(1);
    state.SkipWithError(why.c_str());
}

void count_items(benchmark::State& state, std::int64_t items_per_iteration) {
    const auto items = state.iterations() * items_per_iteration;
    state.SetItemsProcessed(items);
    state.counters["per_item"] = benchmark::Counter(static_cast<double>(items),
                                                    benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

AllocationCount::AllocationCount() : start_(allocations.load(std::memory_order_relaxed)) {}

void AllocationCount::report(benchmark::State& state) const {
    if (!ZEN_MICRO_COUNT_ALLOCATIONS) return;
    const auto counted = allocations.load(std::memory_order_relaxed) - start_;
    state.counters["allocs"] = benchmark::Counter(static_cast<double>(counted), benchmark::Counter::kAvgIterations);
}

}  // namespace zen::micro

int main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
    const std::size_t ran = benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    if (ran == 0) {
        std::fprintf(stderr, "zen_micro_bench: no benchmark matches the filter\n");
        return 1;
    }
    if (const int failed = failures.load(); failed > 0) {
        std::fprintf(stderr, "zen_micro_bench: %d benchmark run%s failed a correctness check (ERROR OCCURRED above)\n",
                     failed, failed == 1 ? "" : "s");
        return 1;
    }
    return 0;
}
