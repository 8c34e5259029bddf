#include "loop/event_loop.hpp"

#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>

namespace zen::loop {

EventLoop::EventLoop() : epoll_(::epoll_create1(EPOLL_CLOEXEC)) {}

bool EventLoop::add_watch(int fd, std::uint32_t events, EventCallback on_event) {
    if (watch_of_fd_.count(fd) != 0) return false;  // one watch per fd
    const std::uint32_t slot = watches_.insert(std::make_unique<Watch>(Watch{fd, std::move(on_event)}));
    epoll_event event{};
    event.events = events;
    event.data.u64 = watches_.token_of(slot);
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event) != 0) {
        watches_.release(slot);
        return false;
    }
    watch_of_fd_.emplace(fd, slot);
    return true;
}

void EventLoop::modify_watch(int fd, std::uint32_t events) {
    const auto found = watch_of_fd_.find(fd);
    if (found == watch_of_fd_.end()) return;
    epoll_event event{};
    event.events = events;
    event.data.u64 = watches_.token_of(found->second);
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &event);
}

void EventLoop::remove_watch(int fd) {
    const auto found = watch_of_fd_.find(fd);
    if (found == watch_of_fd_.end()) return;
    watches_.release(found->second);
    watch_of_fd_.erase(found);
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

TimerHandle EventLoop::call_later(Clock::duration delay, Callback callback) {
    return call_at(Clock::now() + delay, std::move(callback));
}

TimerHandle EventLoop::call_at(TimePoint when, Callback callback) {
    const std::uint64_t id = next_timer_++;
    timer_callbacks_.emplace(id, std::move(callback));
    timers_.arm(when, id);
    return TimerHandle{id};
}

void EventLoop::cancel(TimerHandle handle) {
    if (timer_callbacks_.erase(handle.id) == 0) return;
    timers_.drop_stale(timer_callbacks_.size(), [this](std::uint64_t id) { return timer_callbacks_.count(id) == 0; });
}

void EventLoop::call_soon(Callback callback) { soon_.push_back(std::move(callback)); }

bool EventLoop::run() {
    std::vector<epoll_event> events(256);
    std::vector<Callback> running;
    stopping_ = false;
    while (!stopping_) {
        now_ = Clock::now();
        const int timeout_ms = soon_.empty() ? wait_timeout_ms(timers_.next(), now_) : 0;
        const int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), timeout_ms);
        if (n < 0 && errno != EINTR) return false;
        now_ = Clock::now();
        for (int i = 0; i < n; ++i) {
            // An earlier callback of this turn may have removed the watch, or replaced it.
            const Watch* watch = watches_.find(events[i].data.u64);
            if (watch == nullptr) continue;
            const EventCallback callback = watch->on_event;  // the callback may remove itself
            callback(events[i].events);
        }
        timers_.expire(now_, [this](TimePoint, std::uint64_t id) {
            const auto found = timer_callbacks_.find(id);
            if (found == timer_callbacks_.end()) return;  // cancelled
            Callback callback = std::move(found->second);
            timer_callbacks_.erase(found);
            callback();
        });
        running.swap(soon_);
        for (Callback& callback : running) callback();
        running.clear();
    }
    return true;
}

}  // namespace zen::loop
