// The pure parts of `zen bench`: the latency histogram's error bound and percentiles, and the
// workload's escapes and answer framing.
#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "commands/bench/latency_histogram.hpp"
#include "commands/bench/workload.hpp"

namespace zen {
namespace {

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

}  // namespace
}  // namespace zen
