// The event loop (src/loop/event_loop.hpp) driven by hand: pipes made ready before run(), timers
// already due when armed (so nothing waits on the clock), and a callback that stops the loop. A
// watchdog timer turns a loop that would hang into a failed test.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

#include "loop/event_loop.hpp"
#include "net/fd.hpp"

namespace zen::loop {
namespace {

using namespace std::chrono_literals;

// Runs the loop until a callback stops it; the watchdog fails the test instead of hanging it.
void run_loop(EventLoop& loop) {
    bool timed_out = false;
    const TimerHandle watchdog = loop.call_later(5s, [&] {
        timed_out = true;
        loop.stop();
    });
    ASSERT_TRUE(loop.run());
    loop.cancel(watchdog);
    EXPECT_FALSE(timed_out) << "nothing stopped the loop";
}

struct Pipe {
    Fd read;
    Fd write;
};

// A non-blocking pipe; `ready` puts a byte in it, so its read end is readable (and stays so:
// the loop is level-triggered and the tests never drain it).
Pipe make_pipe(bool ready) {
    int fds[2] = {-1, -1};
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) throw std::runtime_error("pipe2");
    Pipe pipe{Fd(fds[0]), Fd(fds[1])};
    if (ready && ::write(pipe.write.get(), "x", 1) != 1) throw std::runtime_error("write");
    return pipe;
}

// --- timers ---------------------------------------------------------------------------------

// Deadlines already past when armed are all due on the first turn: the order they fire in is
// the loop's, not the clock's, and not the order they were armed in.
TEST(EventLoop, DueTimersFireInTimeOrder) {
    EventLoop loop;
    ASSERT_TRUE(loop.valid());
    const TimePoint base = Clock::now();
    std::vector<std::string> fired;
    loop.call_at(base - 2ms, [&] { fired.push_back("b"); });
    loop.call_at(base - 1ms, [&] { fired.push_back("c"); });
    loop.call_at(base - 3ms, [&] { fired.push_back("a"); });
    loop.call_at(base, [&] {
        fired.push_back("stop");
        loop.stop();
    });
    loop.call_at(base + 1h, [&] { fired.push_back("later"); });
    run_loop(loop);
    EXPECT_EQ(fired, (std::vector<std::string>{"a", "b", "c", "stop"}));
}

// Timers in the future: the loop sleeps until they are due (a couple of milliseconds), then
// fires them earliest first.
TEST(EventLoop, FutureTimersFireWhenDueInOrder) {
    EventLoop loop;
    std::vector<int> fired;
    const TimePoint before = Clock::now();
    loop.call_later(2ms, [&] {
        fired.push_back(2);
        loop.stop();
    });
    loop.call_later(1ms, [&] { fired.push_back(1); });
    run_loop(loop);
    EXPECT_EQ(fired, (std::vector<int>{1, 2}));
    EXPECT_GE(loop.now() - before, 2ms);  // not fired early
}

TEST(EventLoop, CancelledTimerNeverFires) {
    EventLoop loop;
    const TimePoint base = Clock::now();
    std::vector<std::string> fired;
    const TimerHandle cancelled = loop.call_at(base - 2ms, [&] { fired.push_back("cancelled"); });
    loop.call_at(base - 1ms, [&] { fired.push_back("kept"); });
    loop.call_at(base, [&] { loop.stop(); });
    loop.cancel(cancelled);
    loop.cancel(cancelled);      // twice is harmless
    loop.cancel(TimerHandle{});  // so is a handle never armed
    run_loop(loop);
    EXPECT_EQ(fired, (std::vector<std::string>{"kept"}));
}

// An earlier timer of the same turn cancels a later one that is already due.
TEST(EventLoop, ATimerCancelledByAnEarlierOneInTheSameTurnDoesNotFire) {
    EventLoop loop;
    const TimePoint base = Clock::now();
    std::vector<std::string> fired;
    TimerHandle second;
    loop.call_at(base - 2ms, [&] {
        fired.push_back("first");
        loop.cancel(second);
    });
    second = loop.call_at(base - 1ms, [&] { fired.push_back("second"); });
    loop.call_at(base, [&] { loop.stop(); });
    run_loop(loop);
    EXPECT_EQ(fired, (std::vector<std::string>{"first"}));
}

// Enough cancellations to compact the timer heap (TimerQueue::drop_stale): the compaction must
// keep exactly the timers still armed, which then fire in order.
TEST(EventLoop, CancellingManyTimersKeepsTheRestInOrder) {
    EventLoop loop;
    const TimePoint base = Clock::now() - 1h;  // all due on the first turn
    constexpr int n = 3000;
    std::vector<TimerHandle> handles;
    std::vector<int> fired;
    for (int i = 0; i < n; ++i) {
        handles.push_back(loop.call_at(base + std::chrono::microseconds(i), [&fired, i] { fired.push_back(i); }));
    }
    for (int i = 0; i < n; ++i) {
        if (i % 10 != 0) loop.cancel(handles[i]);
    }
    loop.call_at(base + 1s, [&] { loop.stop(); });
    run_loop(loop);
    ASSERT_EQ(fired.size(), static_cast<std::size_t>(n / 10));
    for (std::size_t k = 0; k < fired.size(); ++k) EXPECT_EQ(fired[k], static_cast<int>(k * 10));
}

// --- call_soon ------------------------------------------------------------------------------

// With nothing watched and no timer but the watchdog, the loop must not sleep: a callback is
// waiting to run.
TEST(EventLoop, CallSoonRunsWithoutWaiting) {
    EventLoop loop;
    bool ran = false;
    loop.call_soon([&] {
        ran = true;
        loop.stop();
    });
    const TimePoint before = Clock::now();
    run_loop(loop);
    EXPECT_TRUE(ran);
    EXPECT_LT(Clock::now() - before, 1s);  // not after the watchdog's 5 s
}

// Two pipes ready in one turn: the soon callback scheduled by whichever watch runs first runs
// after both watches, and after the turn's due timers.
TEST(EventLoop, CallSoonRunsAfterTheCurrentTurnsCallbacks) {
    EventLoop loop;
    Pipe a = make_pipe(true);
    Pipe b = make_pipe(true);
    std::vector<std::string> order;
    bool scheduled = false;
    auto on_ready = [&](std::string name) {
        return [&, name](std::uint32_t events) {
            EXPECT_TRUE(events & EPOLLIN);
            order.push_back(name);
            if (scheduled) return;
            scheduled = true;
            loop.call_soon([&] {
                order.push_back("soon");
                loop.stop();
            });
        };
    };
    ASSERT_TRUE(loop.add_watch(a.read.get(), EPOLLIN, on_ready("a")));
    ASSERT_TRUE(loop.add_watch(b.read.get(), EPOLLIN, on_ready("b")));
    loop.call_at(Clock::now() - 1ms, [&] { order.push_back("timer"); });
    run_loop(loop);
    ASSERT_EQ(order.size(), 4u);
    std::vector<std::string> watches(order.begin(), order.begin() + 2);
    std::sort(watches.begin(), watches.end());
    EXPECT_EQ(watches, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(order[2], "timer");
    EXPECT_EQ(order[3], "soon");
    loop.remove_watch(a.read.get());
    loop.remove_watch(b.read.get());
}

// A callback scheduled by a soon callback waits for the next turn: the ready pipe's watch runs
// again in between.
TEST(EventLoop, CallSoonFromASoonCallbackRunsNextTurn) {
    EventLoop loop;
    Pipe pipe = make_pipe(true);
    std::vector<std::string> order;
    bool scheduled = false;
    ASSERT_TRUE(loop.add_watch(pipe.read.get(), EPOLLIN, [&](std::uint32_t) {
        order.push_back("watch");
        if (scheduled) return;
        scheduled = true;
        loop.call_soon([&] {
            order.push_back("soon 1");
            loop.call_soon([&] {
                order.push_back("soon 2");
                loop.stop();
            });
        });
    }));
    run_loop(loop);
    EXPECT_EQ(order, (std::vector<std::string>{"watch", "soon 1", "watch", "soon 2"}));
    loop.remove_watch(pipe.read.get());
}

// --- watches --------------------------------------------------------------------------------

TEST(EventLoop, OneWatchPerFd) {
    EventLoop loop;
    Pipe pipe = make_pipe(false);
    EXPECT_TRUE(loop.add_watch(pipe.read.get(), EPOLLIN, [](std::uint32_t) {}));
    EXPECT_FALSE(loop.add_watch(pipe.read.get(), EPOLLIN, [](std::uint32_t) {}));
    loop.remove_watch(pipe.read.get());
    EXPECT_TRUE(loop.add_watch(pipe.read.get(), EPOLLIN, [](std::uint32_t) {}));  // free again
    loop.remove_watch(pipe.read.get());
    EXPECT_FALSE(loop.add_watch(-1, EPOLLIN, [](std::uint32_t) {}));  // epoll refuses it
}

TEST(EventLoop, AWatchFiresWhileItsFdIsReadyForTheEventsAsked) {
    EventLoop loop;
    Pipe pipe = make_pipe(true);
    int calls = 0;
    ASSERT_TRUE(loop.add_watch(pipe.read.get(), 0, [&](std::uint32_t) { ++calls; }));
    loop.call_soon([&] { loop.stop(); });
    run_loop(loop);
    EXPECT_EQ(calls, 0);  // readable, but not watched for reading
    loop.modify_watch(pipe.read.get(), EPOLLIN);
    loop.call_soon([&] { loop.stop(); });
    run_loop(loop);
    EXPECT_EQ(calls, 1);
    loop.remove_watch(pipe.read.get());
    loop.call_soon([&] { loop.stop(); });
    run_loop(loop);
    EXPECT_EQ(calls, 1);  // removed: never again
}

// Two pipes ready in one turn; whichever watch runs first removes the other and puts a watch on
// an idle pipe in its place (the slot the removed one freed, in its next generation). The
// removed watch's event, already fetched this turn, must reach neither the removed callback nor
// the one that took its slot.
TEST(EventLoop, AWatchRemovedEarlierInTheTurnDoesNotFire) {
    EventLoop loop;
    Pipe a = make_pipe(true);
    Pipe b = make_pipe(true);
    Pipe idle_a = make_pipe(false);
    Pipe idle_b = make_pipe(false);
    std::vector<std::string> fired;
    ASSERT_TRUE(loop.add_watch(a.read.get(), EPOLLIN, [&](std::uint32_t) {
        fired.push_back("a");
        loop.remove_watch(b.read.get());
        loop.add_watch(idle_b.read.get(), EPOLLIN, [&](std::uint32_t) { fired.push_back("replacing b"); });
    }));
    ASSERT_TRUE(loop.add_watch(b.read.get(), EPOLLIN, [&](std::uint32_t) {
        fired.push_back("b");
        loop.remove_watch(a.read.get());
        loop.add_watch(idle_a.read.get(), EPOLLIN, [&](std::uint32_t) { fired.push_back("replacing a"); });
    }));
    loop.call_soon([&] { loop.stop(); });  // one turn
    run_loop(loop);
    ASSERT_EQ(fired.size(), 1u);
    EXPECT_TRUE(fired[0] == "a" || fired[0] == "b") << fired[0];
    for (const Pipe* pipe : {&a, &b, &idle_a, &idle_b}) loop.remove_watch(pipe->read.get());
}

// A callback may remove its own watch (the loop holds a copy of the callback while it runs).
TEST(EventLoop, AWatchMayRemoveItself) {
    EventLoop loop;
    Pipe pipe = make_pipe(true);
    std::string captured = "kept alive while it runs";
    std::string seen;
    ASSERT_TRUE(loop.add_watch(pipe.read.get(), EPOLLIN, [&, captured](std::uint32_t) {
        loop.remove_watch(pipe.read.get());
        seen = captured;  // reads the capture after the watch is gone
        loop.stop();
    }));
    run_loop(loop);
    EXPECT_EQ(seen, "kept alive while it runs");
}

TEST(EventLoop, NowIsTheTimeOfTheLatestTurn) {
    EventLoop loop;
    const TimePoint before = Clock::now();
    TimePoint seen{};
    loop.call_soon([&] {
        seen = loop.now();
        loop.stop();
    });
    run_loop(loop);
    EXPECT_GE(seen, before);
    EXPECT_LE(seen, Clock::now());
}

}  // namespace
}  // namespace zen::loop
