// The loops' deadline heap and how long their waits may sleep (src/loop/timer_queue.hpp), with
// TimePoint values built by hand: no clock is read, nothing waits.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <set>
#include <utility>
#include <vector>

#include "loop/timer_queue.hpp"

namespace zen {
namespace {

using namespace std::chrono_literals;

const TimePoint t0 = TimePoint{} + 1h;

// Everything due at `now`, in the order it fired.
std::vector<std::pair<TimePoint, std::uint64_t>> expire(TimerQueue& queue, TimePoint now) {
    std::vector<std::pair<TimePoint, std::uint64_t>> fired;
    queue.expire(now, [&](TimePoint when, std::uint64_t token) { fired.emplace_back(when, token); });
    return fired;
}

// --- arming and expiring --------------------------------------------------------------------

TEST(TimerQueue, IsEmptyAndNeverDueUntilArmed) {
    TimerQueue queue;
    EXPECT_TRUE(queue.empty());
    EXPECT_EQ(queue.size(), 0u);
    EXPECT_EQ(queue.next(), never);
    EXPECT_TRUE(expire(queue, t0 + 24h).empty());
    queue.arm(t0 + 5s, 1);
    EXPECT_FALSE(queue.empty());
    EXPECT_EQ(queue.next(), t0 + 5s);
}

TEST(TimerQueue, FiresInTimeOrderWhateverTheOrderArmed) {
    TimerQueue queue;
    queue.arm(t0 + 3s, 3);
    queue.arm(t0 + 1s, 1);
    queue.arm(t0 + 4s, 4);
    queue.arm(t0 + 2s, 2);
    EXPECT_EQ(queue.next(), t0 + 1s);  // the earliest, not the first or last armed
    const auto fired = expire(queue, t0 + 4s);
    ASSERT_EQ(fired.size(), 4u);
    for (std::size_t i = 0; i < fired.size(); ++i) {
        EXPECT_EQ(fired[i].second, i + 1);
        EXPECT_EQ(fired[i].first, t0 + std::chrono::seconds(i + 1));  // fire() is told its own time
    }
    EXPECT_TRUE(queue.empty());
    EXPECT_EQ(queue.next(), never);
}

TEST(TimerQueue, FiresOnlyWhatIsDueAndKeepsTheRest) {
    TimerQueue queue;
    queue.arm(t0 + 1s, 1);
    queue.arm(t0 + 2s, 2);
    queue.arm(t0 + 3s, 3);
    EXPECT_TRUE(expire(queue, t0 + 1s - 1ns).empty());  // a nanosecond early: nothing
    const auto fired = expire(queue, t0 + 2s);          // due exactly at its time: fires
    ASSERT_EQ(fired.size(), 2u);
    EXPECT_EQ(fired[0].second, 1u);
    EXPECT_EQ(fired[1].second, 2u);
    EXPECT_EQ(queue.size(), 1u);
    EXPECT_EQ(queue.next(), t0 + 3s);
    EXPECT_TRUE(expire(queue, t0 + 2s).empty());  // what fired is gone
}

TEST(TimerQueue, TiedDeadlinesAllFireInAnyOrder) {
    TimerQueue queue;
    for (std::uint64_t token = 1; token <= 5; ++token) queue.arm(t0 + 1s, token);
    queue.arm(t0 + 2s, 99);
    const auto fired = expire(queue, t0 + 1s);
    std::multiset<std::uint64_t> tokens;
    for (const auto& [when, token] : fired) {
        EXPECT_EQ(when, t0 + 1s);
        tokens.insert(token);
    }
    EXPECT_EQ(tokens, (std::multiset<std::uint64_t>{1, 2, 3, 4, 5}));
    EXPECT_EQ(queue.next(), t0 + 2s);
}

// Entries are never removed early: the same token armed twice fires twice.
TEST(TimerQueue, ATokenArmedTwiceFiresTwice) {
    TimerQueue queue;
    queue.arm(t0 + 2s, 7);
    queue.arm(t0 + 1s, 7);
    const auto fired = expire(queue, t0 + 2s);
    ASSERT_EQ(fired.size(), 2u);
    EXPECT_EQ(fired[0].first, t0 + 1s);
    EXPECT_EQ(fired[1].first, t0 + 2s);
}

// --- drop_stale -----------------------------------------------------------------------------

// n entries, token i due at t0 + i ms, armed in a scrambled order so the heap's order is earned.
TimerQueue filled(std::size_t n) {
    TimerQueue queue;
    for (std::size_t k = 0; k < n; ++k) {
        const std::size_t i = (k * 7919) % n;  // 7919 is prime, coprime with every n used here
        queue.arm(t0 + std::chrono::milliseconds(i), i);
    }
    return queue;
}

bool odd(std::uint64_t token) { return token % 2 == 1; }

TEST(TimerQueue, DropStaleLeavesASmallHeapAlone) {
    // At the floor, with no live owner at all and every entry stale: still nothing is dropped.
    TimerQueue queue = filled(TimerQueue::stale_floor);
    std::size_t asked = 0;
    EXPECT_FALSE(queue.drop_stale(0, [&](std::uint64_t) {
        ++asked;
        return true;
    }));
    EXPECT_EQ(queue.size(), TimerQueue::stale_floor);
    EXPECT_EQ(asked, 0u);  // not even looked at
}

TEST(TimerQueue, DropStaleCompactsOneEntryPastTheFloor) {
    TimerQueue queue = filled(TimerQueue::stale_floor + 1);
    EXPECT_TRUE(queue.drop_stale(0, odd));
    EXPECT_EQ(queue.size(), (TimerQueue::stale_floor + 1 + 1) / 2);  // 0, 2, ..., 1024: the evens
}

// Past the floor, the heap is kept while it holds no more than four entries per live owner
// (plus four): 2000 entries are fine for 499 owners (4 * 500), too many for 498 (4 * 499).
TEST(TimerQueue, DropStaleWaitsUntilEntriesOutnumberFourPerLiveOwner) {
    constexpr std::size_t n = 2000;
    TimerQueue queue = filled(n);
    EXPECT_FALSE(queue.drop_stale(499, odd));
    EXPECT_EQ(queue.size(), n);
    EXPECT_FALSE(queue.drop_stale(10'000, odd));
    EXPECT_EQ(queue.size(), n);
    EXPECT_TRUE(queue.drop_stale(498, odd));
    EXPECT_EQ(queue.size(), n / 2);
}

TEST(TimerQueue, DropStaleDropsExactlyTheStaleAndKeepsTheOrder) {
    constexpr std::size_t n = 3000;
    TimerQueue queue = filled(n);
    std::size_t asked = 0;
    ASSERT_TRUE(queue.drop_stale(0, [&](std::uint64_t token) {
        ++asked;
        return token % 3 == 0;
    }));
    EXPECT_EQ(asked, n);  // every entry was judged once
    EXPECT_EQ(queue.size(), n - n / 3);
    EXPECT_EQ(queue.next(), t0 + 1ms);  // token 0 was stale: token 1 is now the earliest
    const auto fired = expire(queue, t0 + 1h);
    ASSERT_EQ(fired.size(), n - n / 3);
    std::uint64_t expected = 0;
    for (const auto& [when, token] : fired) {
        if (expected % 3 == 0) ++expected;
        EXPECT_EQ(token, expected);
        EXPECT_EQ(when, t0 + std::chrono::milliseconds(token));
        ++expected;
    }
    EXPECT_TRUE(queue.empty());
}

// The compacted heap is still a heap: entries armed after it are ordered among the survivors.
TEST(TimerQueue, ArmingAfterACompactionStillFiresInOrder) {
    TimerQueue queue = filled(2000);
    ASSERT_TRUE(queue.drop_stale(0, odd));
    queue.arm(t0 + 1ms, 1'000'001);        // between the survivors 0 and 2
    queue.arm(t0 + 1999ms, 1'000'003);     // after them all
    queue.arm(t0 - 1ms, 1'000'000);        // before them all
    EXPECT_EQ(queue.next(), t0 - 1ms);
    const auto fired = expire(queue, t0 + 1h);
    ASSERT_EQ(fired.size(), 1003u);
    EXPECT_TRUE(std::is_sorted(fired.begin(), fired.end(),
                               [](const auto& a, const auto& b) { return a.first < b.first; }));
    EXPECT_EQ(fired[0].second, 1'000'000u);
    EXPECT_EQ(fired[1].second, 0u);
    EXPECT_EQ(fired[2].second, 1'000'001u);
    EXPECT_EQ(fired.back().second, 1'000'003u);
}

// --- how long a wait may sleep --------------------------------------------------------------

TEST(TimerQueue, WaitDurationIsZeroWhenDueOrPast) {
    EXPECT_EQ(wait_duration(t0, t0, 1min), Clock::duration::zero());
    EXPECT_EQ(wait_duration(t0 - 5s, t0, 1min), Clock::duration::zero());
}

TEST(TimerQueue, WaitDurationIsTheTimeLeftUpToTheCap) {
    EXPECT_EQ(wait_duration(t0 + 1500us, t0, 1min), 1500us);
    EXPECT_EQ(wait_duration(t0 + 1min, t0, 1min), 1min);  // exactly the cap
    EXPECT_EQ(wait_duration(t0 + 1min + 1ns, t0, 1min), 1min);
    EXPECT_EQ(wait_duration(t0 + 24h, t0, 1min), 1min);
    EXPECT_EQ(wait_duration(never, t0, 1min), 1min);
    EXPECT_EQ(wait_duration(never, t0, 250ms), 250ms);  // the cap given, not a built-in one
}

TEST(TimerQueue, WaitTimeoutIsZeroWhenDueOrPast) {
    EXPECT_EQ(wait_timeout_ms(t0, t0), 0);
    EXPECT_EQ(wait_timeout_ms(t0 - 1ns, t0), 0);
    EXPECT_EQ(wait_timeout_ms(t0 - 1h, t0), 0);
}

// Rounded down, a deadline 1.2 ms away would wake the loop 0.2 ms early, find nothing due and
// wait again for 0 ms: a spin. Every fraction of a millisecond rounds up.
TEST(TimerQueue, WaitTimeoutRoundsUpToWholeMilliseconds) {
    EXPECT_EQ(wait_timeout_ms(t0 + 1200us, t0), 2);
    EXPECT_EQ(wait_timeout_ms(t0 + 1ns, t0), 1);
    EXPECT_EQ(wait_timeout_ms(t0 + 999us, t0), 1);
    EXPECT_EQ(wait_timeout_ms(t0 + 1ms, t0), 1);  // a whole millisecond stays one
    EXPECT_EQ(wait_timeout_ms(t0 + 1ms + 1ns, t0), 2);
    EXPECT_EQ(wait_timeout_ms(t0 + 250ms, t0), 250);
}

TEST(TimerQueue, WaitTimeoutIsCappedAndMinusOneForNever) {
    EXPECT_EQ(wait_timeout_ms(never, t0), -1);  // epoll_wait's and poll()'s "no timeout"
    EXPECT_EQ(wait_timeout_ms(never, t0, 10ms), -1);
    EXPECT_EQ(wait_timeout_ms(t0 + 24h, t0), 60'000);  // the default cap: a minute
    EXPECT_EQ(wait_timeout_ms(t0 + 24h, t0, 10ms), 10);
    EXPECT_EQ(wait_timeout_ms(t0 + 10ms + 1ns, t0, 10ms), 10);  // the cap is not rounded past
}

}  // namespace
}  // namespace zen
