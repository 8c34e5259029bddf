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
#include "loop/timer_queue.hpp"
#include "net/signals.hpp"
#include "runtime/tracing.hpp"
#include "runtime/accepting.hpp"
#include "runtime/startup.hpp"
#include "runtime/stopping.hpp"
#include "servers/registry.hpp"

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
            report_socket_error(client.connection, client.fd.get(), sent.error, now);
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
            report_socket_error(connection, client.fd.get(), got.error, now);
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

class PollLoop {
public:
    PollLoop(Listener& listener, const ServerContext& context)
        : listener_(listener), context_(context), buffer_(64 * 1024) {}
    int run();

private:
    void begin_drain(TimePoint now);
    // Fills fds_ with what each client wants; returns when the loop must wake at the latest.
    TimePoint ask(TimePoint now);
    void serve_clients(TimePoint now);
    // False when the listener is broken.
    bool accept_clients(TimePoint now);

    Listener& listener_;
    const ServerContext& context_;
    std::vector<std::unique_ptr<Client>> clients_;
    std::vector<pollfd> fds_;  // the signal pipes, the listener, then clients_ in order
    std::vector<char> buffer_;
    bool accepting_ = true;
    bool draining_ = false;
    bool watch_listener_ = false;
    TimePoint accept_paused_until_ = TimePoint::min();
};

void PollLoop::begin_drain(TimePoint now) {
    draining_ = true;
    accepting_ = false;
    for (auto& client : clients_) {
        client->connection.stop(now, drain_deadline(context_));
        read(*client, buffer_, now);  // what the client has already sent is answered
        write(*client, now);
        settle(*client);
    }
}

TimePoint PollLoop::ask(TimePoint now) {
    fds_.clear();
    fds_.push_back({stop_fd(), POLLIN, 0});
    fds_.push_back({quit_fd(), POLLIN, 0});
    watch_listener_ = accepting_ && now >= accept_paused_until_;
    fds_.push_back({watch_listener_ ? listener_.fd.get() : -1, POLLIN, 0});
    TimePoint wake = accepting_ && !watch_listener_ ? accept_paused_until_ : never;
    if (accepting_) wake = std::min(wake, idle_exit_wake(context_, now));
    for (const auto& client : clients_) {
        const Connection& connection = client->connection;
        const short events = static_cast<short>((connection.wants_read() ? POLLIN : 0) |
                                                (connection.output().empty() ? 0 : POLLOUT));
        // Watching nothing (answers held by --wait): leave the fd out, or its POLLHUP would spin us.
        fds_.push_back({events != 0 ? client->fd.get() : -1, events, 0});
        wake = std::min(wake, connection.deadline());
        // Stopping: what has arrived is read at once, readable or not (an empty socket says so).
        if (connection.reads_without_waiting()) wake = now;
    }
    return wake;
}

void PollLoop::serve_clients(TimePoint now) {
    // Clients first, then new connections, so the array's order still matches the vector.
    for (std::size_t i = 0; i < clients_.size(); ++i) {
        Client& client = *clients_[i];
        const short revents = fds_[3 + i].revents;
        if (((revents & (POLLIN | POLLHUP | POLLERR)) || client.connection.reads_without_waiting()) &&
            client.connection.wants_read()) {
            read(client, buffer_, now);
        }
        if (now >= client.connection.deadline()) client.connection.tick(now);
        // Room to send, answers now due, or a hang-up that a send will report.
        write(client, now);
        settle(client);
    }
}

bool PollLoop::accept_clients(TimePoint now) {
    for (int accepted_now = 0; accepted_now < 64; ++accepted_now) {
        AcceptOutcome accepted = accept_client(listener_);
        if (accepted.status == AcceptStatus::accepted) {
            clients_.push_back(std::make_unique<Client>(std::move(accepted.client), context_, now));
            write(*clients_.back(), now);  // a client turned away for --max-connections is told so
            continue;
        }
        if (accepted.status == AcceptStatus::out_of_fds) {
            log_accept_problem(accepted, context_);
            accept_paused_until_ = now + accept_pause;
        } else if (accepted.status == AcceptStatus::failed) {
            log_accept_problem(accepted, context_);
            return false;
        }
        if (accepted.status != AcceptStatus::client_gone) break;
    }
    return true;
}

int PollLoop::run() {
    for (;;) {
        auto now = Clock::now();
        if (stop_requested() && !draining_) begin_drain(now);
        if (quit_requested()) accepting_ = false;
        if (accepting_ && idle_exit_due(context_, {listener_.fd.get()}, now)) {
            quit_for_idleness(context_);
            accepting_ = false;
        }
        std::erase_if(clients_, [](const auto& client) { return !settle(*client); });
        if (!accepting_ && clients_.empty()) return 0;

        const TimePoint wake = ask(now);
        if (::poll(fds_.data(), fds_.size(), wait_timeout_ms(wake, now)) < 0 && errno != EINTR) {
            context_.log.server(LogLevel::error, "poll_error", "poll() failed: " + errno_text(errno));
            return 1;
        }
        now = Clock::now();
        serve_clients(now);
        if (watch_listener_ && (fds_[2].revents & POLLIN) && !stop_requested() && !accept_clients(now)) return 1;
    }
}

}  // namespace

int serve_poll(Listener& listener, const ServerContext& context) {
    const HardStopWatchdog watchdog(context);
    PollLoop loop(listener, context);
    trace_thread_name(context, "event loop");
    if (!announce_serving(listener, context)) return 1;
    return loop.run();
}

}  // namespace zen
