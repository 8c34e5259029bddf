// The --exit-idle rule (src/loop/idle_exit.hpp) on a ConnectionTracker fed times by hand: the
// tracker never reads the clock, so every instant here is built, and nothing waits.
#include <gtest/gtest.h>

#include <chrono>

#include "conn/connection_tracker.hpp"
#include "loop/idle_exit.hpp"

namespace zen {
namespace {

using namespace std::chrono_literals;

const TimePoint created = TimePoint{} + 1h;  // the server's start
constexpr std::chrono::milliseconds limit = 30s;

TEST(IdleExit, OffMeansNever) {
    ConnectionTracker tracker(created);
    EXPECT_EQ(idle_exit_time(tracker, 0ms, created), never);
    EXPECT_EQ(idle_exit_time(tracker, 0ms, created + 24h), never);
    EXPECT_EQ(idle_exit_time(tracker, -5ms, created), never);  // a negative limit is off too
    tracker.opened();
    EXPECT_EQ(idle_exit_time(tracker, 0ms, created + 1s), never);  // open or not
    tracker.closed(created + 2s);
    EXPECT_EQ(idle_exit_time(tracker, 0ms, created + 3s), never);
}

// Idle since the start: the limit counts from there, whatever the time now.
TEST(IdleExit, NoConnectionEverIsDueTheLimitAfterTheStart) {
    ConnectionTracker tracker(created);
    EXPECT_EQ(idle_exit_time(tracker, limit, created), created + limit);
    EXPECT_EQ(idle_exit_time(tracker, limit, created + 10s), created + limit);
    EXPECT_EQ(idle_exit_time(tracker, limit, created + 1h), created + limit);  // long past: due
}

// While one is open none can close before now, so no exit can come earlier than now + limit.
TEST(IdleExit, WhileAConnectionIsOpenItIsTheLimitFromNow) {
    ConnectionTracker tracker(created);
    tracker.opened();
    EXPECT_EQ(idle_exit_time(tracker, limit, created + 5s), created + 5s + limit);
    EXPECT_EQ(idle_exit_time(tracker, limit, created + 1h), created + 1h + limit);
    tracker.opened();
    tracker.closed(created + 2h);  // one of two closed: still open
    EXPECT_EQ(idle_exit_time(tracker, limit, created + 3h), created + 3h + limit);
}

TEST(IdleExit, AfterTheLastCloseItIsTheLimitAfterThatClose) {
    ConnectionTracker tracker(created);
    tracker.opened();
    tracker.opened();
    tracker.closed(created + 10s);
    const TimePoint last_close = created + 20s;
    tracker.closed(last_close);
    EXPECT_EQ(idle_exit_time(tracker, limit, created + 25s), last_close + limit);
    EXPECT_EQ(idle_exit_time(tracker, limit, created + 1h), last_close + limit);  // not from now
    // A later conversation moves it on again.
    tracker.opened();
    tracker.closed(created + 2h);
    EXPECT_EQ(idle_exit_time(tracker, limit, created + 2h), created + 2h + limit);
}

TEST(IdleExit, NextCheckIsTheExitTimeWhileItLiesAhead) {
    ConnectionTracker tracker(created);
    EXPECT_EQ(idle_exit_next_check(tracker, limit, created + 10s), created + limit);
    EXPECT_EQ(idle_exit_next_check(tracker, limit, created + limit - 1ns), created + limit);
    tracker.opened();
    EXPECT_EQ(idle_exit_next_check(tracker, limit, created + 40s), created + 40s + limit);
}

// The exit time has passed yet the server still runs: a client was waiting in the backlog, and
// its conversation, opening now, cannot end before now: look again a limit from now, never at
// the past time (which would be a loop that wakes at once, forever).
TEST(IdleExit, NextCheckOnceThatHasPassedIsTheLimitFromNow) {
    ConnectionTracker tracker(created);
    const TimePoint now = created + limit + 5s;
    ASSERT_LT(idle_exit_time(tracker, limit, now), now);
    EXPECT_EQ(idle_exit_next_check(tracker, limit, now), now + limit);
    // Due exactly now counts as passed too: the loop that asks found the server not yet due.
    EXPECT_EQ(idle_exit_next_check(tracker, limit, created + limit), created + limit + limit);
    tracker.opened();
    tracker.closed(created + 2h);
    EXPECT_EQ(idle_exit_next_check(tracker, limit, created + 3h), created + 3h + limit);
}

TEST(IdleExit, NextCheckWhenOffIsNever) {
    ConnectionTracker tracker(created);
    EXPECT_EQ(idle_exit_next_check(tracker, 0ms, created), never);
    EXPECT_EQ(idle_exit_next_check(tracker, 0ms, created + 24h), never);  // not "now + 0"
    tracker.opened();
    EXPECT_EQ(idle_exit_next_check(tracker, 0ms, created + 24h), never);
}

}  // namespace
}  // namespace zen
