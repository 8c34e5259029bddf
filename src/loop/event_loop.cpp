#include "loop/event_loop.hpp"

#include <sys/epoll.h>

#include <algorithm>
#include <cerrno>

namespace zen::loop {

EventLoop::EventLoop() : epoll_(::epoll_create1(EPOLL_CLOEXEC)) {}

bool EventLoop::add_watch(int fd, std::uint32_t events, EventCallback on_event) {
    const std::uint32_t generation = next_generation_++;
    epoll_event event{};
    event.events = events;
    event.data.u64 = (std::uint64_t{generation} << 32) | static_cast<std::uint32_t>(fd);
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event) != 0) return false;
    watches_[fd] = Watch{generation, std::move(on_event)};
    return true;
}

void EventLoop::modify_watch(int fd, std::uint32_t events) {
    const auto found = watches_.find(fd);
    if (found == watches_.end()) return;
    epoll_event event{};
    event.events = events;
    event.data.u64 = (std::uint64_t{found->second.generation} << 32) | static_cast<std::uint32_t>(fd);
    ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &event);
}

void EventLoop::remove_watch(int fd) {
    if (watches_.erase(fd) > 0) ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
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
    if (timers_.size() > 1024 && timers_.size() > 4 * timer_callbacks_.size()) {
        timers_.compact([this](std::uint64_t id) { return timer_callbacks_.count(id) == 0; });
    }
}

void EventLoop::call_soon(Callback callback) { soon_.push_back(std::move(callback)); }

bool EventLoop::run() {
    std::vector<epoll_event> events(256);
    std::vector<Callback> running;
    stopping_ = false;
    while (!stopping_) {
        now_ = Clock::now();
        const int timeout_ms = soon_.empty() ? timers_.wait_ms(now_, 60'000) : 0;
        const int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()),
                                   timers_.empty() && soon_.empty() ? -1 : timeout_ms);
        if (n < 0 && errno != EINTR) return false;
        now_ = Clock::now();
        for (int i = 0; i < n; ++i) {
            const int fd = static_cast<int>(static_cast<std::uint32_t>(events[i].data.u64));
            const auto generation = static_cast<std::uint32_t>(events[i].data.u64 >> 32);
            const auto found = watches_.find(fd);
            // An earlier callback of this turn may have removed the watch, or replaced it.
            if (found == watches_.end() || found->second.generation != generation) continue;
            const EventCallback callback = found->second.on_event;  // the callback may remove itself
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
