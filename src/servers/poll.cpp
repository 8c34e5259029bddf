// --arch poll: one thread, a hand-written poll() state machine (the book's srv_async.py, made
// correct: pipelining, partial writes, backpressure, timeouts, fd reuse).
//
// Model: one loop owns every client. Each turn it builds the pollfd array afresh from its
// clients' connections (POLLIN while one wants input, POLLOUT while answers wait for room),
// sleeps in poll() until the nearest deadline, then lets each ready client read, answer and
// write; every rule is the client's Connection's (src/conn/connection.hpp). The array is rebuilt
// every turn, so a closed fd that the kernel hands out again can never be confused with the old
// client. Level-triggered: a client with more to read is simply reported again next turn.
// Blocks: only in poll() — and in --delay, which stalls every client at once (the lesson).
// Connection limit: none of its own; the fd limit. Cost grows with the number of clients on
// every turn (poll() and the array are O(n)): the reason epoll exists.
// EAGAIN: ends a read or write turn; the next poll() says when to go on. EINTR: retried.
// Short writes: the rest waits for POLLOUT. EOF: the session answers what came before it.
// EMFILE: accepting pauses 100 ms (the listener leaves the array), logged once a second.
// Stop: SIGTERM/SIGINT end accepting; every conversation answers what has arrived and closes by
// --drain-timeout. SIGQUIT and --exit-idle end accepting and let conversations finish.
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <memory>
#include <span>
#include <vector>

#include "conn/connection.hpp"
#include "net/io.hpp"
#include "net/signals.hpp"
#include "servers/lifecycle.hpp"

namespace zen {

namespace {

constexpr int reads_per_turn = 4;  // per client, so one busy client cannot starve the rest

struct Client {
    Client(AcceptedClient accepted, const ConnectionContext& context, TimePoint now)
        : fd(std::move(accepted.fd)), connection(context, accepted.peer, now) {}
    Fd fd;
    Connection connection;
    bool shut_down_writing = false;
};

// Sends what the connection has ready until the socket is full.
void write(Client& client, TimePoint now) {
    for (;;) {
        const std::string_view out = client.connection.output();
        if (out.empty()) return;
        const IoResult sent = send_some(client.fd.get(), out);
        if (sent.status == IoStatus::would_block) return;
        if (sent.status == IoStatus::error) {
            client.connection.failed(errno_text(sent.error), now);
            return;
        }
        client.connection.sent(sent.bytes, now);
        if (sent.bytes < out.size()) return;  // the socket buffer is full: POLLOUT says when
    }
}

// Reads while the socket fills the buffer, at most reads_per_turn times; answers go out at once.
void read(Client& client, std::span<char> buffer, TimePoint now) {
    Connection& connection = client.connection;
    for (int reads = 0; reads < reads_per_turn && connection.wants_read(); ++reads) {
        const IoResult got = receive_some(client.fd.get(), buffer.data(), buffer.size());
        if (got.status == IoStatus::eof) {
            connection.received_eof(now);
            return;
        }
        if (got.status == IoStatus::error) {
            connection.failed(errno_text(got.error), now);
            return;
        }
        const bool emptied = got.status == IoStatus::would_block || got.bytes < buffer.size();
        if (got.status == IoStatus::ok) {
            connection.received({buffer.data(), got.bytes}, now);
            write(client, now);
        }
        if (emptied) {
            if (connection.reads_without_waiting()) connection.nothing_to_read(now);
            return;
        }
    }
}

// Does what the connection now asks; false once it is over.
bool settle(Client& client) {
    switch (client.connection.fate()) {
        case Connection::Fate::close:
        case Connection::Fate::drop:
            return false;
        case Connection::Fate::linger:
            if (!client.shut_down_writing) {
                ::shutdown(client.fd.get(), SHUT_WR);
                client.shut_down_writing = true;
            }
            return true;
        case Connection::Fate::keep:
            return true;
    }
    return true;
}

}  // namespace

int serve_poll(Listener& listener, const ServerContext& context) {
    const HardStopWatchdog watchdog(context);
    std::vector<std::unique_ptr<Client>> clients;
    std::vector<pollfd> fds;
    std::vector<char> buffer(64 * 1024);
    bool accepting = true;
    bool draining = false;
    auto accept_paused_until = TimePoint::min();
    if (!announce_serving(listener, context)) return 1;

    for (;;) {
        auto now = Clock::now();
        if (stop_requested() && !draining) {
            draining = true;
            accepting = false;
            for (auto& client : clients) {
                client->connection.stop(now, drain_deadline(context));
                read(*client, buffer, now);  // what the client has already sent is answered
                write(*client, now);
                settle(*client);
            }
        }
        if (quit_requested()) accepting = false;
        if (accepting && idle_exit_due(context, {listener.fd.get()})) {
            quit_for_idleness(context);
            accepting = false;
        }
        std::erase_if(clients, [](const auto& client) { return !settle(*client); });
        if (!accepting && clients.empty()) return 0;

        // Ask for what each client wants; deadlines decide how long to sleep.
        fds.clear();
        fds.push_back({stop_fd(), POLLIN, 0});
        fds.push_back({quit_fd(), POLLIN, 0});
        const bool watch_listener = accepting && now >= accept_paused_until;
        fds.push_back({watch_listener ? listener.fd.get() : -1, POLLIN, 0});
        auto wake = accepting && !watch_listener ? accept_paused_until : never;
        if (accepting && context.options.exit_idle.count() > 0) {
            wake = std::min(wake, now + std::chrono::milliseconds(100));
        }
        for (const auto& client : clients) {
            const Connection& connection = client->connection;
            const short events = static_cast<short>((connection.wants_read() ? POLLIN : 0) |
                                                    (connection.output().empty() ? 0 : POLLOUT));
            // Watching nothing (answers held by --wait): leave the fd out, or its POLLHUP would spin us.
            fds.push_back({events != 0 ? client->fd.get() : -1, events, 0});
            wake = std::min(wake, connection.deadline());
            // Stopping: what has arrived is read at once, readable or not (an empty socket says so).
            if (connection.reads_without_waiting()) wake = now;
        }
        int timeout_ms = -1;
        if (wake != never) {
            timeout_ms = static_cast<int>(std::clamp<std::int64_t>(
                std::chrono::ceil<std::chrono::milliseconds>(wake - now).count(), 0, 60'000));
        }
        if (::poll(fds.data(), fds.size(), timeout_ms) < 0 && errno != EINTR) {
            context.log.server(LogLevel::error, "poll_error", "poll() failed: " + errno_text(errno));
            return 1;
        }
        now = Clock::now();

        // Clients first, then new connections, so the array's order still matches the vector.
        for (std::size_t i = 0; i < clients.size(); ++i) {
            Client& client = *clients[i];
            const short revents = fds[3 + i].revents;
            if (((revents & (POLLIN | POLLHUP | POLLERR)) || client.connection.reads_without_waiting()) &&
                client.connection.wants_read()) {
                read(client, buffer, now);
            }
            if (now >= client.connection.deadline()) client.connection.tick(now);
            // Room to send, answers now due, or a hang-up that a send will report.
            write(client, now);
            settle(client);
        }
        if (watch_listener && (fds[2].revents & POLLIN) && !stop_requested()) {
            for (int accepted_now = 0; accepted_now < 64; ++accepted_now) {
                AcceptOutcome accepted = accept_client(listener);
                if (accepted.status == AcceptStatus::accepted) {
                    clients.push_back(std::make_unique<Client>(std::move(accepted.client), context, now));
                    write(*clients.back(), now);  // a client turned away for --max-connections is told so
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
