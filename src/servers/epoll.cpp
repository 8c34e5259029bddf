// --arch epoll: one thread, an edge-triggered epoll reactor (the modern form of srv_async.py).
//
// Model: every socket is registered once with EPOLLET; the kernel reports only changes, so each
// report must be followed until the socket is empty: to EAGAIN, or to a read that did not fill
// the buffer (new bytes raise a new event; once the peer has hung up, on to EOF). That saves the
// EAGAIN read: 2 system calls per answer, not 3. Accepts are drained to EAGAIN (at most 64 a turn). Reads
// take at most 4 recv() calls per client per turn; a client with more waiting goes on a ready
// list served next turn, so one flooding client cannot starve the rest. Answers are written at
// once (write first); EPOLLOUT is asked for only when bytes are left over, and dropped again
// once they are sent. Deadlines (timeouts, --wait, lingering closes, the drain) sit in one timer
// heap (src/loop/timer_queue.hpp); the per-client logic is src/servers/event_conversation.cpp.
// Events carry slot + generation, never a raw fd, so a late event cannot reach a reused fd's
// new client.
// Blocks: only in epoll_wait() — and in --delay, which stalls every client (the lesson).
// Connection limit: none of its own; the fd limit. Cost per turn is O(ready), not O(clients).
// EAGAIN: the normal end of every read, write and accept run. EINTR: retried. Short writes: the
// rest waits for EPOLLOUT. EOF: the session answers what came before it.
// EMFILE: accepting pauses 100 ms (a timer retries, since no new edge may come), logged once a
// second; never a busy loop.
// Stop: SIGTERM/SIGINT end accepting; every conversation answers what has arrived and closes by
// --drain-timeout. SIGQUIT and --exit-idle end accepting and let conversations finish.
#include "servers/epoll_loop.hpp"

#include <sys/epoll.h>

#include <algorithm>
#include <memory>

#include "loop/timer_queue.hpp"
#include "net/signals.hpp"
#include "servers/blocking.hpp"
#include "servers/event_conversation.hpp"

namespace zen {

namespace {

constexpr std::uint64_t stop_token = ~std::uint64_t{0};
constexpr std::uint64_t quit_token = stop_token - 1;
constexpr std::uint64_t listener_token = stop_token - 2;
constexpr int accepts_per_turn = 64;
constexpr std::uint32_t client_events = EPOLLIN | EPOLLRDHUP | EPOLLET;

struct Slot {
    std::unique_ptr<EventConversation> conversation;
    std::uint32_t generation = 0;
    Clock::time_point armed = Clock::time_point::max();  // the deadline the timer heap holds for it
    bool watching_out = false;
    bool on_ready_list = false;
};

class EpollLoop {
public:
    EpollLoop(int listener_fd, const std::vector<int>& all_listener_fds, const ServerContext& context)
        : listener_fd_(listener_fd), all_listener_fds_(all_listener_fds), context_(context),
          epoll_(::epoll_create1(EPOLL_CLOEXEC)), buffer_(64 * 1024) {}

    int run();

private:
    static std::uint64_t token(std::uint32_t index, std::uint32_t generation) {
        return (std::uint64_t{generation} << 32) | index;
    }
    Slot* find(std::uint64_t token) {
        const auto index = static_cast<std::uint32_t>(token);
        if (index >= slots_.size()) return nullptr;
        Slot& slot = slots_[index];
        if (!slot.conversation || slot.generation != static_cast<std::uint32_t>(token >> 32)) return nullptr;
        return &slot;
    }
    bool watch(int fd, std::uint32_t events, std::uint64_t token, int op = EPOLL_CTL_ADD) {
        epoll_event event{};
        event.events = events;
        event.data.u64 = token;
        return ::epoll_ctl(epoll_.get(), op, fd, &event) == 0;
    }
    void settle(std::uint32_t index);
    void accept_clients(Clock::time_point now);
    void begin_drain(Clock::time_point now);

    const int listener_fd_;
    const std::vector<int>& all_listener_fds_;
    const ServerContext& context_;
    Fd epoll_;
    std::vector<char> buffer_;
    std::vector<Slot> slots_;
    std::vector<std::uint32_t> free_slots_;
    std::vector<std::uint32_t> ready_;  // slots whose reads stopped at the budget, not at EAGAIN
    TimerQueue timers_;
    std::size_t live_ = 0;
    bool accepting_ = true;
    bool listener_ready_ = true;  // an edge may be pending: accept until EAGAIN
    Clock::time_point accept_paused_until_ = Clock::time_point::min();
};

void EpollLoop::settle(std::uint32_t index) {
    Slot& slot = slots_[index];
    EventConversation& conversation = *slot.conversation;
    if (conversation.finished()) {
        slot.conversation.reset();  // its fd is closed, which also takes it out of the epoll set
        ++slot.generation;
        slot.armed = Clock::time_point::max();
        slot.watching_out = false;
        free_slots_.push_back(index);
        --live_;
        return;
    }
    if (conversation.wants_write() != slot.watching_out) {
        slot.watching_out = conversation.wants_write();
        watch(conversation.fd(), client_events | (slot.watching_out ? std::uint32_t{EPOLLOUT} : 0u), token(index, slot.generation),
              EPOLL_CTL_MOD);
    }
    if (conversation.should_read_now() && !slot.on_ready_list) {
        slot.on_ready_list = true;
        ready_.push_back(index);
    }
    const auto deadline = conversation.next_deadline();
    if (deadline < slot.armed) {
        slot.armed = deadline;
        timers_.arm(deadline, token(index, slot.generation));
        // A closed client's entry stays until its time (up to --idle-timeout away): drop such
        // entries once they outnumber the live clients, or the heap grows with the accept rate.
        if (timers_.size() > 1024 && timers_.size() > 4 * (live_ + 1))
            timers_.compact([this](std::uint64_t stale) { return find(stale) == nullptr; });
    }
}

void EpollLoop::accept_clients(Clock::time_point now) {
    for (int n = 0; n < accepts_per_turn; ++n) {
        AcceptOutcome accepted = accept_client(listener_fd_);
        if (accepted.status == AcceptStatus::client_gone) continue;
        if (accepted.status == AcceptStatus::would_block) {
            listener_ready_ = false;
            return;
        }
        if (accepted.status != AcceptStatus::accepted) {
            log_accept_problem(accepted, context_);
            accept_paused_until_ = now + accept_pause;
            return;
        }
        std::uint32_t index;
        if (!free_slots_.empty()) {
            index = free_slots_.back();
            free_slots_.pop_back();
        } else {
            index = static_cast<std::uint32_t>(slots_.size());
            slots_.emplace_back();
        }
        Slot& slot = slots_[index];
        slot.conversation = std::make_unique<EventConversation>(std::move(accepted.client), context_, now);
        ++live_;
        if (slot.conversation->finished() ||
            !watch(slot.conversation->fd(), client_events, token(index, slot.generation))) {
            if (!slot.conversation->finished()) {
                log_client_error(context_, format_address(accepted.client.peer), "epoll_ctl: " + errno_text(errno));
            }
            slot.conversation.reset();
            ++slot.generation;
            free_slots_.push_back(index);
            --live_;
            continue;
        }
        settle(index);
    }
}

void EpollLoop::begin_drain(Clock::time_point now) {
    for (std::uint32_t index = 0; index < slots_.size(); ++index) {
        if (!slots_[index].conversation) continue;
        slots_[index].conversation->begin_drain(buffer_, now);
        settle(index);
    }
}

int EpollLoop::run() {
    if (!epoll_.valid() || !watch(stop_fd(), EPOLLIN, stop_token) || !watch(quit_fd(), EPOLLIN, quit_token) ||
        !watch(listener_fd_, EPOLLIN | EPOLLET, listener_token)) {
        context_.log.server(LogLevel::error, "epoll_error", "Cannot set up epoll: " + errno_text(errno));
        return 1;
    }
    bool draining = false;
    std::vector<epoll_event> events(256);
    std::vector<std::uint32_t> ready_now;
    for (;;) {
        auto now = Clock::now();
        if (stop_requested() && !draining) {
            draining = true;
            accepting_ = false;
            begin_drain(now);
        }
        if (quit_requested()) accepting_ = false;
        if (accepting_ && idle_exit_due(context_, all_listener_fds_)) {
            quit_for_idleness(context_);
            accepting_ = false;
        }
        if (!accepting_ && live_ == 0) return 0;

        auto wake = timers_.next();
        if (accepting_ && listener_ready_) wake = std::min(wake, std::max(now, accept_paused_until_));
        if (accepting_ && context_.options.exit_idle.count() > 0) wake = std::min(wake, now + std::chrono::milliseconds(100));
        int timeout_ms = -1;
        if (!ready_.empty()) {
            timeout_ms = 0;
        } else if (wake != Clock::time_point::max()) {
            timeout_ms = static_cast<int>(std::clamp<std::int64_t>(
                std::chrono::ceil<std::chrono::milliseconds>(wake - now).count(), 0, 60'000));
        }
        const int n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), timeout_ms);
        if (n < 0 && errno != EINTR) {
            context_.log.server(LogLevel::error, "epoll_error", "epoll_wait() failed: " + errno_text(errno));
            return 1;
        }
        now = Clock::now();

        ready_now.swap(ready_);
        ready_.clear();
        for (const std::uint32_t index : ready_now) slots_[index].on_ready_list = false;

        for (int i = 0; i < n; ++i) {
            const std::uint64_t event_token = events[i].data.u64;
            if (event_token == listener_token) {
                listener_ready_ = true;
                continue;
            }
            if (event_token == stop_token || event_token == quit_token) continue;  // seen at the top
            Slot* slot = find(event_token);
            if (slot == nullptr) continue;  // its client is gone; the event came late
            EventConversation& conversation = *slot->conversation;
            const std::uint32_t flags = events[i].events;
            if (flags & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) conversation.note_hang_up();
            if (flags & EPOLLIN) conversation.note_readable();
            if (flags & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
                if (conversation.wants_read()) {
                    conversation.handle_readable(buffer_, now);
                } else {
                    conversation.handle_writable(now);  // a send reports the error or hang-up
                }
            }
            if ((flags & EPOLLOUT) && !conversation.finished()) conversation.handle_writable(now);
            settle(static_cast<std::uint32_t>(event_token));
        }
        for (const std::uint32_t index : ready_now) {
            Slot& slot = slots_[index];
            if (!slot.conversation || slot.on_ready_list) continue;
            if (slot.conversation->should_read_now()) slot.conversation->handle_readable(buffer_, now);
            settle(index);
        }
        if (accepting_ && listener_ready_ && now >= accept_paused_until_) accept_clients(now);
        timers_.expire(now, [&](Clock::time_point when, std::uint64_t timer_token) {
            Slot* slot = find(timer_token);
            if (slot == nullptr || slot->armed != when) return;  // superseded
            slot->armed = Clock::time_point::max();
            slot->conversation->handle_deadline(now);
            settle(static_cast<std::uint32_t>(timer_token));
        });
    }
}

}  // namespace

int run_epoll_loop(int listener_fd, const std::vector<int>& all_listener_fds, const ServerContext& context) {
    EpollLoop loop(listener_fd, all_listener_fds, context);
    return loop.run();
}

int serve_epoll(Listener& listener, const ServerContext& context) {
    const HardStopWatchdog watchdog(context);
    const std::vector<int> listeners{listener.fd.get()};
    return run_epoll_loop(listener.fd.get(), listeners, context);
}

}  // namespace zen
