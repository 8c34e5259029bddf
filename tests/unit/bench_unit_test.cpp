// The pure parts of `zen bench`, in memory: the latency histogram's error bound and percentiles,
// the .hgrm spectrum, the per-second series, the open loop's saturation rule, the units, and the
// workload's escapes and answer framing. tests/bench/bench_test.cpp runs zen bench itself.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "commands/bench/hgrm.hpp"
#include "commands/bench/latency_histogram.hpp"
#include "commands/bench/saturation.hpp"
#include "commands/bench/series.hpp"
#include "commands/bench/units.hpp"
#include "commands/bench/workload.hpp"
#include "support/hgrm_text.hpp"

namespace zen {
namespace {

using test::HgrmLine;
using test::hgrm_lines;

TEST(LatencyHistogram, BucketsTileEveryValueWithoutGapsOrOverlap) {
    for (std::size_t bucket = 0; bucket < LatencyHistogram::bucket_count; ++bucket) {
        const std::uint64_t low = LatencyHistogram::bucket_low(bucket);
        const std::uint64_t high = LatencyHistogram::bucket_high(bucket);
        ASSERT_LE(low, high);
        ASSERT_EQ(LatencyHistogram::bucket_of(low), bucket);
        ASSERT_EQ(LatencyHistogram::bucket_of(high), bucket);
        if (bucket + 1 < LatencyHistogram::bucket_count) {
            ASSERT_EQ(LatencyHistogram::bucket_low(bucket + 1), high + 1);
        }
    }
    EXPECT_EQ(LatencyHistogram::bucket_high(LatencyHistogram::bucket_count - 1), UINT64_MAX);
}

TEST(LatencyHistogram, SmallValuesAreExact) {
    for (std::uint64_t value = 0; value < 256; ++value) {
        LatencyHistogram histogram;
        histogram.record(value);
        EXPECT_EQ(histogram.value_at(0.5), value);
    }
}

TEST(LatencyHistogram, EveryReportedValueIsWithinOnePercent) {
    std::mt19937_64 random(7);
    for (int i = 0; i < 200'000; ++i) {
        // Log-uniform from 1 ns to about 18 minutes.
        const auto value = static_cast<std::uint64_t>(std::exp(std::uniform_real_distribution<double>(0, 27.7)(random)));
        const std::size_t bucket = LatencyHistogram::bucket_of(value);
        const std::uint64_t low = LatencyHistogram::bucket_low(bucket);
        const double middle = static_cast<double>(low) + static_cast<double>(LatencyHistogram::bucket_high(bucket) - low) / 2;
        ASSERT_LE(std::abs(middle - static_cast<double>(value)), 0.01 * static_cast<double>(value)) << value;
    }
}

TEST(LatencyHistogram, PercentilesOfAUniformSpread) {
    LatencyHistogram histogram;
    for (std::uint64_t value = 1; value <= 100'000; ++value) histogram.record(value * 1000);  // 1 us .. 100 ms
    EXPECT_EQ(histogram.count(), 100'000u);
    EXPECT_NEAR(static_cast<double>(histogram.value_at(0.50)), 50'000'000.0, 0.01 * 50'000'000.0);
    EXPECT_NEAR(static_cast<double>(histogram.value_at(0.90)), 90'000'000.0, 0.01 * 90'000'000.0);
    EXPECT_NEAR(static_cast<double>(histogram.value_at(0.99)), 99'000'000.0, 0.01 * 99'000'000.0);
    EXPECT_NEAR(static_cast<double>(histogram.value_at(0.999)), 99'900'000.0, 0.01 * 99'900'000.0);
    EXPECT_EQ(histogram.max(), 100'000'000u);
    EXPECT_EQ(histogram.min(), 1000u);
    EXPECT_EQ(histogram.value_at(1.0), 100'000'000u);  // clamped to the true maximum
    EXPECT_NEAR(histogram.mean(), 50'000'500.0, 1.0);
}

TEST(LatencyHistogram, OneSlowAnswerInAThousandIsTheP999) {
    LatencyHistogram histogram;
    for (int i = 0; i < 999; ++i) histogram.record(100'000);
    histogram.record(80'000'000);
    EXPECT_NEAR(static_cast<double>(histogram.value_at(0.99)), 100'000.0, 1'000.0);
    EXPECT_NEAR(static_cast<double>(histogram.value_at(0.999)), 100'000.0, 1'000.0);
    EXPECT_EQ(histogram.value_at(0.9999), 80'000'000u);
}

TEST(LatencyHistogram, MergingEqualsRecordingIntoOne) {
    LatencyHistogram one, left, right;
    std::mt19937_64 random(11);
    for (int i = 0; i < 10'000; ++i) {
        const std::uint64_t value = random() % 10'000'000;
        one.record(value);
        (i % 2 ? left : right).record(value);
    }
    left.merge(right);
    EXPECT_EQ(left.count(), one.count());
    EXPECT_EQ(left.min(), one.min());
    EXPECT_EQ(left.max(), one.max());
    for (double q : {0.1, 0.5, 0.9, 0.99, 0.999}) EXPECT_EQ(left.value_at(q), one.value_at(q)) << q;
}

TEST(LatencyHistogram, EmptyReportsZero) {
    const LatencyHistogram histogram;
    EXPECT_EQ(histogram.value_at(0.99), 0u);
    EXPECT_EQ(histogram.min(), 0u);
    EXPECT_EQ(histogram.mean(), 0.0);
}

TEST(BenchWorkload, TheZenTableEndsAnswersWithADot) {
    const Workload workload = zen_workload();
    ASSERT_EQ(workload.exchanges.size(), 3u);
    EXPECT_EQ(workload.exchanges[0].question, "Beautiful is better than?");
    EXPECT_EQ(workload.exchanges[0].answer, "Ugly.");
    EXPECT_EQ(workload.suffix, '.');
    EXPECT_EQ(workload.longest_answer, std::string("Implicit.").size());
}

TEST(BenchWorkload, EscapesAsTypedOnACommandLine) {
    EXPECT_EQ(decode_escapes("PING\\r\\n").value(), "PING\r\n");
    EXPECT_EQ(decode_escapes("a\\tb\\\\c\\x41\\x7e\\0").value(), std::string("a\tb\\cA~\0", 8));
    EXPECT_FALSE(decode_escapes("bad\\q").ok());
    EXPECT_FALSE(decode_escapes("trailing\\").ok());
    EXPECT_FALSE(decode_escapes("\\x4").ok());
    EXPECT_FALSE(decode_escapes("\\xzz").ok());
}

TEST(BenchWorkload, RedisPingTakesItsSuffixFromTheAnswer) {
    auto workload = custom_workload({"PING\\r\\n"}, {"+PONG\\r\\n"}, "");
    ASSERT_TRUE(workload.ok()) << workload.error();
    EXPECT_EQ(workload->suffix, '\n');
    EXPECT_EQ(workload->exchanges[0].question, "PING\r\n");
    EXPECT_EQ(workload->exchanges[0].answer, "+PONG\r\n");
}

TEST(BenchWorkload, RejectsPairsThatCannotBeFramed) {
    EXPECT_NE(custom_workload({"a?", "b?"}, {"A."}, "").error().find("every --question needs an --answer"),
              std::string::npos);
    EXPECT_NE(custom_workload({"a?"}, {"A.B."}, "").error().find("hold it nowhere else"), std::string::npos);
    EXPECT_NE(custom_workload({"a?"}, {"A!"}, ".").error().find("must end with the suffix"), std::string::npos);
    EXPECT_NE(custom_workload({"a?"}, {"A."}, "..").error().find("one byte"), std::string::npos);
    EXPECT_FALSE(custom_workload({""}, {"A."}, "").ok());
    EXPECT_FALSE(custom_workload({"a?"}, {""}, "").ok());
}

TEST(BenchWorkload, AnswerEndFindsTheFirstSuffix) {
    EXPECT_EQ(answer_end("Ugly.Implicit.", '.'), 5u);
    EXPECT_EQ(answer_end("Ugl", '.'), std::string_view::npos);
    EXPECT_EQ(answer_end("+PONG\r\n", '\n'), 7u);
}

TEST(BenchHistogram, PercentilesAreWithinTheBucketError) {
    LatencyHistogram histogram;
    for (std::uint64_t value = 1; value <= 100'000; ++value) histogram.record(value * 1000);  // 1 µs .. 100 ms
    EXPECT_EQ(histogram.count(), 100'000u);
    EXPECT_EQ(histogram.min(), 1000u);
    EXPECT_EQ(histogram.max(), 100'000'000u);
    EXPECT_NEAR(histogram.mean(), 50'000'500.0, 1.0);
    for (const double quantile : {0.5, 0.9, 0.99, 0.999}) {
        const double exact = quantile * 100'000'000.0;
        EXPECT_NEAR(static_cast<double>(histogram.value_at(quantile)), exact, exact * 0.004) << quantile;
    }
    EXPECT_EQ(histogram.value_at(1.0), 100'000'000u);
}

TEST(BenchHistogram, MergeAddsCountsAndKeepsTheExtremes) {
    LatencyHistogram low, high;
    for (int i = 0; i < 10; ++i) low.record(100);
    high.record(5'000'000);
    low.merge(high);
    EXPECT_EQ(low.count(), 11u);
    EXPECT_EQ(low.min(), 100u);
    EXPECT_EQ(low.max(), 5'000'000u);
    EXPECT_EQ(low.value_at(0.5), 100u);  // below 256 ns every value has its own bucket
    EXPECT_EQ(LatencyHistogram().value_at(0.99), 0u);
}

TEST(BenchHgrm, TheSpectrumClimbsToOneHundredPercentWithTheFooter) {
    LatencyHistogram histogram;
    for (std::uint64_t us = 1; us <= 1000; ++us) histogram.record(us * 1000);  // 1 µs .. 1 ms
    std::ostringstream out;
    write_hgrm(out, histogram);
    std::vector<std::string> footer;
    const std::vector<HgrmLine> lines = hgrm_lines(out.str(), &footer);
    ASSERT_GT(lines.size(), 20u);
    EXPECT_DOUBLE_EQ(lines.front().percentile, 0.0);
    for (std::size_t i = 1; i < lines.size(); ++i) {
        EXPECT_GT(lines[i].percentile, lines[i - 1].percentile) << i;
        EXPECT_GE(lines[i].value, lines[i - 1].value) << i;
        EXPECT_GE(lines[i].total, lines[i - 1].total) << i;
    }
    for (const HgrmLine& line : lines) {
        if (line.percentile == 0.5) {
            EXPECT_NEAR(line.value, 0.5, 0.5 * 0.008);  // milliseconds, a bucket's width
            EXPECT_EQ(line.inverse, "2.00");
            EXPECT_NEAR(static_cast<double>(line.total), 500.0, 4.0);
        }
    }
    EXPECT_DOUBLE_EQ(lines.back().percentile, 1.0);
    EXPECT_EQ(lines.back().total, 1000u);
    EXPECT_DOUBLE_EQ(lines.back().value, 1.0);  // the exact maximum
    EXPECT_EQ(lines.back().inverse, "inf");
    ASSERT_EQ(footer.size(), 3u);
    EXPECT_EQ(footer[0].rfind("#[Mean    =     0.500500, StdDeviation   =     0.28", 0), 0u) << footer[0];
    EXPECT_EQ(footer[1], "#[Max     =     1.000000, Total count    =         1000]");
    EXPECT_EQ(footer[2].rfind("#[Buckets = ", 0), 0u);
}

TEST(BenchHgrm, OneValueAndNoValue) {
    LatencyHistogram one;
    one.record(2'000'000);
    std::ostringstream out;
    write_hgrm(out, one);
    const std::vector<HgrmLine> lines = hgrm_lines(out.str());
    ASSERT_EQ(lines.size(), 2u);  // percentile 0, then the last line at 100 %
    EXPECT_DOUBLE_EQ(lines[0].value, 2.0);
    EXPECT_DOUBLE_EQ(lines[1].percentile, 1.0);
    std::ostringstream empty;
    write_hgrm(empty, LatencyHistogram());
    std::vector<std::string> footer;
    EXPECT_TRUE(hgrm_lines(empty.str(), &footer).empty());
    ASSERT_EQ(footer.size(), 3u);
    EXPECT_EQ(footer[1], "#[Max     =     0.000000, Total count    =            0]");
}

TEST(BenchSeries, EachSecondKeepsItsAnswersErrorsAndPercentiles) {
    SecondSeries first, second;
    for (std::uint64_t us = 1; us <= 1000; ++us) first.answer(0, us * 1000);
    second.answer(2, 5'000'000);
    second.error(2, 3);
    first.merge(second);
    ASSERT_EQ(first.size(), 3u);
    EXPECT_EQ(first.at(0).answers, 1000u);
    EXPECT_EQ(first.at(1).answers, 0u);
    EXPECT_EQ(first.value_at(1, 0.5), 0u);
    EXPECT_EQ(first.at(2).answers, 1u);
    EXPECT_EQ(first.at(2).errors, 3u);
    EXPECT_NEAR(static_cast<double>(first.value_at(0, 0.5)), 500'000.0, 500'000.0 * 0.035);
    EXPECT_NEAR(static_cast<double>(first.value_at(0, 0.99)), 990'000.0, 990'000.0 * 0.035);
    EXPECT_NEAR(static_cast<double>(first.value_at(2, 0.99)), 5'000'000.0, 5'000'000.0 * 0.035);
    EXPECT_FALSE(first.truncated());
    first.answer(SecondSeries::max_seconds, 1000);  // past the cap: dropped and said so
    EXPECT_EQ(first.size(), 3u);
    EXPECT_TRUE(first.truncated());
}

TEST(BenchSaturation, AServerFarBelowTheOfferedRateFellBehind) {
    OpenLoopOutcome outcome;
    outcome.seconds = 2;
    outcome.scheduled = 6000;
    outcome.answered = 1700;
    outcome.late = 4;
    outcome.unanswered = 4296;
    outcome.behind_ns = 1'430'000'000;
    const Saturation saturation = judge_saturation(outcome);
    EXPECT_DOUBLE_EQ(saturation.offered_rps, 3000.0);
    EXPECT_DOUBLE_EQ(saturation.achieved_rps, 850.0);
    EXPECT_TRUE(saturation.fell_behind);
    EXPECT_EQ(describe_saturation(outcome, saturation),
              "offered 3,000/s, achieved 850/s: the server fell behind (4,296 due but never sent, 1.43 s behind "
              "schedule at the end, 4 answered after the window)");
}

TEST(BenchSaturation, AServerThatKeepsUpDidNotFallBehind) {
    OpenLoopOutcome outcome;
    outcome.seconds = 2;
    outcome.scheduled = 10'000;
    outcome.answered = 9'996;  // the last few still in flight when the window closed
    outcome.late = 3;
    outcome.unanswered = 4;
    outcome.behind_ns = 80'000;
    const Saturation saturation = judge_saturation(outcome);
    EXPECT_FALSE(saturation.fell_behind);
    EXPECT_EQ(describe_saturation(outcome, saturation),
              "offered 5,000/s, achieved 4,998/s: the server kept up (3 answered after the window)");
}

TEST(BenchSaturation, AQueueLeftAtTheEndIsFallingBehindEvenAtNinetyFivePercent) {
    OpenLoopOutcome outcome;
    outcome.seconds = 10;
    outcome.scheduled = 10'000;
    outcome.answered = 9'800;  // 98 %: above the rate rule
    outcome.unanswered = 200;  // 2 % still queued: the queue was growing
    EXPECT_TRUE(judge_saturation(outcome).fell_behind);
    outcome.answered = 9'400;  // below 95 % with no queue (lost to errors): still behind
    outcome.unanswered = 0;
    EXPECT_TRUE(judge_saturation(outcome).fell_behind);
    outcome.scheduled = 0;  // nothing measured: nothing to judge
    outcome.answered = 0;
    EXPECT_FALSE(judge_saturation(outcome).fell_behind);
    outcome.seconds = 0;
    EXPECT_FALSE(judge_saturation(outcome).fell_behind);
}

TEST(BenchUnits, DurationsScaleToTheirUnit) {
    EXPECT_EQ(scaled_duration(0), "0 ns");
    EXPECT_EQ(scaled_duration(850), "850 ns");
    EXPECT_EQ(scaled_duration(999.7), "1.00 µs");
    EXPECT_EQ(scaled_duration(265'200), "265 µs");
    EXPECT_EQ(scaled_duration(26'520), "26.5 µs");
    EXPECT_EQ(scaled_duration(4'394'900), "4.39 ms");
    EXPECT_EQ(scaled_duration(999'960), "1.00 ms");
    EXPECT_EQ(scaled_duration(1'992'294'400), "1.99 s");
    EXPECT_EQ(scaled_duration(125e9), "125 s");
    EXPECT_EQ(grouped(0), "0");
    EXPECT_EQ(grouped(1'234'567), "1,234,567");
}

}  // namespace
}  // namespace zen
