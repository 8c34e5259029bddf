// A small event loop in the manner of asyncio's: readiness callbacks on file descriptors
// (level-triggered epoll), timers, and callbacks to run soon. --arch callbacks and --arch chat
// are written on it (through transport.hpp); it knows nothing of the Zen protocol.
// One loop per thread; nothing here is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <unordered_map>
#include <vector>

#include "base/clock.hpp"
#include "loop/slot_table.hpp"
#include "loop/timer_queue.hpp"
#include "net/fd.hpp"

namespace zen::loop {

struct TimerHandle {
    std::uint64_t id = 0;
};

class EventLoop {
public:
    using Callback = std::function<void()>;
    using EventCallback = std::function<void(std::uint32_t events)>;

    EventLoop();
    EventLoop(const EventLoop&) = delete;
    EventLoop& operator=(const EventLoop&) = delete;

    bool valid() const { return epoll_.valid(); }

    // Calls on_event with the epoll event bits while fd is ready for `events` (EPOLLIN,
    // EPOLLOUT). One watch per fd; remove it before closing the fd.
    bool add_watch(int fd, std::uint32_t events, EventCallback on_event);
    void modify_watch(int fd, std::uint32_t events);
    void remove_watch(int fd);

    TimerHandle call_later(Clock::duration delay, Callback callback);
    TimerHandle call_at(TimePoint when, Callback callback);
    void cancel(TimerHandle handle);
    // Runs callback on the next turn, after the current event's callbacks.
    void call_soon(Callback callback);

    // Runs until stop(); returns false if waiting for events failed.
    bool run();
    void stop() { stopping_ = true; }
    TimePoint now() const { return now_; }

private:
    struct Watch {
        int fd;
        EventCallback on_event;
    };

    Fd epoll_;
    // An event carries its watch's slot and generation: one for a watch removed (or replaced)
    // earlier in the same turn finds nothing.
    SlotTable<Watch> watches_;
    std::unordered_map<int, std::uint32_t> watch_of_fd_;  // fd -> slot in watches_
    TimerQueue timers_;
    std::unordered_map<std::uint64_t, Callback> timer_callbacks_;
    std::uint64_t next_timer_ = 1;
    std::vector<Callback> soon_;
    bool stopping_ = false;
    TimePoint now_ = Clock::now();
};

}  // namespace zen::loop
