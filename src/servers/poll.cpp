// --arch poll: one thread, a hand-written poll() state machine (the book's srv_async.py, made
// correct: pipelining, partial writes, backpressure, timeouts, fd reuse).
//
// Model: one loop owns every client. Each turn it builds the pollfd array afresh from its
// conversations (POLLIN while a conversation wants input, POLLOUT while answers wait for room),
// sleeps in poll() until the nearest deadline, then lets each ready conversation read, answer and
// write (src/servers/event_conversation.cpp). The array is rebuilt every turn, so a closed fd
// that the kernel hands out again can never be confused with the old client.
// Blocks: only in poll() — and in --delay, which stalls every client at once (the lesson).
// Connection limit: none of its own; the fd limit. Cost grows with the number of clients on
// every turn (poll() and the array are O(n)): the reason epoll exists.
// EAGAIN: ends a read or write turn; the next poll() says when to go on. EINTR: retried.
// Short writes: the rest waits for POLLOUT. EOF: the session answers what came before it.
// EMFILE: accepting pauses 100 ms (the listener leaves the array), logged once a second.
// Stop: SIGTERM/SIGINT end accepting; every conversation answers what has arrived and closes by
// --drain-timeout. SIGQUIT and --exit-idle end accepting and let conversations finish.
#include <poll.h>

#include <algorithm>
#include <memory>
#include <vector>

#include "net/signals.hpp"
#include "servers/blocking.hpp"
#include "servers/event_conversation.hpp"

namespace zen {

int serve_poll(Listener& listener, const ServerContext& context) {
    const HardStopWatchdog watchdog(context);
    std::vector<std::unique_ptr<EventConversation>> conversations;
    std::vector<pollfd> fds;
    std::vector<char> buffer(64 * 1024);
    bool accepting = true;
    bool draining = false;
    auto accept_paused_until = Clock::time_point::min();

    for (;;) {
        auto now = Clock::now();
        if (stop_requested() && !draining) {
            draining = true;
            accepting = false;
            for (auto& conversation : conversations) conversation->begin_drain(buffer, now);
        }
        if (quit_requested()) accepting = false;
        if (accepting && idle_exit_due(context, {listener.fd.get()})) {
            quit_for_idleness(context);
            accepting = false;
        }
        std::erase_if(conversations, [](const auto& c) { return c->finished(); });
        if (!accepting && conversations.empty()) return 0;

        // Ask for what each party wants; deadlines decide how long to sleep.
        fds.clear();
        fds.push_back({stop_fd(), POLLIN, 0});
        fds.push_back({quit_fd(), POLLIN, 0});
        const bool watch_listener = accepting && now >= accept_paused_until;
        fds.push_back({watch_listener ? listener.fd.get() : -1, POLLIN, 0});
        auto wake = accepting && !watch_listener ? accept_paused_until : Clock::time_point::max();
        if (accepting && context.options.exit_idle.count() > 0) {
            wake = std::min(wake, now + std::chrono::milliseconds(100));
        }
        for (const auto& conversation : conversations) {
            const short events = static_cast<short>((conversation->wants_read() ? POLLIN : 0) |
                                                    (conversation->wants_write() ? POLLOUT : 0));
            // Watching nothing (answers held by --wait): leave the fd out, or its POLLHUP would spin us.
            fds.push_back({events != 0 ? conversation->fd() : -1, events, 0});
            wake = std::min(wake, conversation->next_deadline());
        }
        int timeout_ms = -1;
        if (wake != Clock::time_point::max()) {
            timeout_ms = static_cast<int>(std::clamp<std::int64_t>(
                std::chrono::ceil<std::chrono::milliseconds>(wake - now).count(), 0, 60'000));
        }
        if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) {
            context.log.server(LogLevel::error, "poll_error", "poll() failed: " + errno_text(errno));
            return 1;
        }
        now = Clock::now();

        // Clients first, then new connections, so the array's order still matches the vector.
        for (std::size_t i = 0; i < conversations.size(); ++i) {
            EventConversation& conversation = *conversations[i];
            const short revents = fds[3 + i].revents;
            if (revents & (POLLIN | POLLHUP | POLLERR)) {
                if (conversation.wants_read()) {
                    conversation.handle_readable(buffer, now);
                } else {
                    conversation.handle_writable(now);  // a send will report the error or hang-up
                }
            }
            if ((revents & POLLOUT) && !conversation.finished()) conversation.handle_writable(now);
            if (!conversation.finished() && conversation.next_deadline() <= now) conversation.handle_deadline(now);
        }
        if (watch_listener && (fds[2].revents & POLLIN) && !stop_requested()) {
            for (int accepted_now = 0; accepted_now < 64; ++accepted_now) {
                AcceptOutcome accepted = accept_client(listener.fd.get());
                if (accepted.status == AcceptStatus::accepted) {
                    conversations.push_back(
                        std::make_unique<EventConversation>(std::move(accepted.client), context, now));
                    continue;
                }
                if (accepted.status == AcceptStatus::out_of_fds) {
                    log_accept_problem(accepted, context);
                    accept_paused_until = now + accept_pause;
                } else if (accepted.status == AcceptStatus::failed) {
                    log_accept_problem(accepted, context);
                    return 1;
                }
                if (accepted.status != AcceptStatus::client_gone) break;
            }
        }
    }
}

}  // namespace zen
