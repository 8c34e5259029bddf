// What --metrics costs an answer: the histogram's bucket choice and its two relaxed atomic adds
// (ConnectionTracker::answer_took), and a whole answer through the connection object, which is
// where the timing lives (its batch bookkeeping, the counters). The second with the histogram is
// the serving path's cost; compare it with session_one_question_connection for the session alone.
#include <chrono>
#include <string>

#include "conn/connection.hpp"
#include "conn/connection_tracker.hpp"
#include "micro.hpp"

namespace zen {
namespace {

void tracker_answer_took(benchmark::State& state) {
    ConnectionTracker tracker;
    std::int64_t ns = 700;
    const micro::AllocationCount allocations;
    for (auto _ : state) {
        tracker.answer_took(std::chrono::nanoseconds(ns));
        ns = ns < 2'000'000 ? ns * 3 : 700;  // wander over the buckets
        benchmark::ClobberMemory();
    }
    allocations.report(state);
    micro::count_items(state, 1);
}
BENCHMARK(tracker_answer_took);

// One question in, its answer out, on a long connection with a fake clock: every counter and
// the answer's timing included.
void connection_one_answer(benchmark::State& state) {
    ConnectionRules rules;
    LiveTable table(AphorismTable::book_defaults());
    LogOptions quiet;
    quiet.quiet = true;
    quiet.file = "/dev/null";
    Log log(quiet);
    ConnectionTracker tracker;
    const ConnectionContext context{rules, table, log, tracker};
    TimePoint now = TimePoint{} + std::chrono::hours(1);
    auto peer = resolve("127.0.0.1", 41285, false);
    if (!peer || peer->empty()) return micro::fail(state, "cannot resolve 127.0.0.1");
    Connection connection(context, peer->front(), now);
    const micro::AllocationCount allocations;
    for (auto _ : state) {
        now += std::chrono::microseconds(3);
        connection.received("Beautiful is better than?", now);
        const std::size_t n = connection.output().size();
        connection.sent(n, now + std::chrono::microseconds(2));
    }
    allocations.report(state);
    if (tracker.value(Counter::answered) != static_cast<std::uint64_t>(state.iterations()) ||
        tracker.answers_in_bucket(answer_bucket(2'000)) != static_cast<std::uint64_t>(state.iterations()))
        return micro::fail(state, "answers not counted and timed");
    micro::count_items(state, 1);
}
BENCHMARK(connection_one_answer);

}  // namespace
}  // namespace zen
