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
// heap (src/loop/timer_queue.hpp); the rules of each connection are its Connection's
// (src/conn/connection.hpp): this file holds only the edge-triggered reading and writing.
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
#include <sys/socket.h>

#include <algorithm>
#include <memory>

#include "conn/connection.hpp"
#include "loop/slot_table.hpp"
#include "loop/timer_queue.hpp"
#include "net/io.hpp"
#include "net/signals.hpp"
#include "runtime/tracing.hpp"
#include "runtime/accepting.hpp"
#include "runtime/startup.hpp"
#include "runtime/stopping.hpp"
#include "servers/registry.hpp"

namespace zen {

namespace {

constexpr std::uint64_t stop_token = ~std::uint64_t{0};
constexpr std::uint64_t quit_token = stop_token - 1;
constexpr std::uint64_t listener_token = stop_token - 2;
constexpr int accepts_per_turn = 64;
constexpr int reads_per_turn = 4;  // per client, so one busy client cannot starve the rest
constexpr std::uint32_t client_events = EPOLLIN | EPOLLRDHUP | EPOLLET;

// One client: its socket, its connection, and what the edges have told us about the socket.
struct Client {
    Client(AcceptedClient accepted, const ConnectionContext& context, TimePoint now)
        : fd(std::move(accepted.fd)), connection(context, accepted.peer, now) {}
    Fd fd;
    Connection connection;
    // The last read said EAGAIN, or emptied the socket. A new client starts so: EPOLL_CTL_ADD
    // raises its first edge, at once if the question is already there, so reading before that
    // edge would only say EAGAIN (half the clients of a short-conversation load, measured).
    bool read_blocked = true;
    bool hung_up = false;        // EPOLLRDHUP/HUP/ERR: a short read no longer means another edge will come
    bool send_blocked = false;   // the last send left bytes over: wait for EPOLLOUT
    bool shut_down_writing = false;
    TimePoint armed = never;     // the deadline the timer heap holds for it
    bool watching_out = false;
    bool on_ready_list = false;
};

using Clients = SlotTable<Client>;

class EpollLoop : public EpollServerLoop {
public:
    EpollLoop(const Listener& listener, const std::vector<int>& all_listener_fds, const ServerContext& context)
        : listener_(listener), all_listener_fds_(all_listener_fds), context_(context),
          epoll_(::epoll_create1(EPOLL_CLOEXEC)), buffer_(64 * 1024) {}

    bool set_up();
    int run() override;

private:
    bool watch(int fd, std::uint32_t events, std::uint64_t token, int op = EPOLL_CTL_ADD) {
        epoll_event event{};
        event.events = events;
        event.data.u64 = token;
        return ::epoll_ctl(epoll_.get(), op, fd, &event) == 0;
    }
    bool read(Client& client, TimePoint now);
    void write(Client& client, TimePoint now);
    void settle(std::uint32_t index);
    void accept_clients(TimePoint now);
    void begin_drain(TimePoint now);
    // Waits for events until the next deadline; false when epoll_wait() failed.
    bool wait(TimePoint now);
    void on_event(const epoll_event& event, TimePoint now);
    void serve_ready_list(TimePoint now);
    void on_deadline(TimePoint when, std::uint64_t token, TimePoint now);

    const Listener& listener_;
    const std::vector<int>& all_listener_fds_;
    const ServerContext& context_;
    Fd epoll_;
    std::vector<char> buffer_;
    Clients clients_;
    std::vector<std::uint32_t> ready_;  // clients whose reads stopped at the budget, not at EAGAIN
    std::vector<std::uint32_t> ready_now_;
    std::vector<epoll_event> events_ = std::vector<epoll_event>(256);
    int event_count_ = 0;
    TimerQueue timers_;
    bool accepting_ = true;
    bool draining_ = false;
    bool listener_ready_ = true;  // an edge may be pending: accept until EAGAIN
    TimePoint accept_paused_until_ = TimePoint::min();
};

// Reads what the socket holds, at most reads_per_turn times, answering and writing as it goes.
// Returns true when the budget ran out before the socket was empty: more may be waiting.
bool EpollLoop::read(Client& client, TimePoint now) {
    Connection& connection = client.connection;
    for (int reads = 0; connection.wants_read() && !client.read_blocked; ++reads) {
        if (reads == reads_per_turn) return true;
        const IoResult got = receive_some(client.fd.get(), buffer_.data(), buffer_.size());
        if (got.status == IoStatus::ok) {
            // A read that did not fill the buffer emptied the socket: what arrives next raises a
            // new edge, so the usual second read (the one that says EAGAIN, a third of the
            // system calls per answer) is skipped. Not once the peer has hung up: its EOF raises
            // no further edge, so then reading goes on until EOF or EAGAIN.
            client.read_blocked = got.bytes < buffer_.size() && !client.hung_up;
            connection.received({buffer_.data(), got.bytes}, now);
            write(client, now);  // write first: most answers leave at once, without waiting for EPOLLOUT
        } else if (got.status == IoStatus::eof) {
            connection.received_eof(now);
            break;
        } else if (got.status == IoStatus::would_block) {
            client.read_blocked = true;
        } else {
            report_socket_error(connection, client.fd.get(), got.error, now);
            break;
        }
        if (client.read_blocked && connection.reads_without_waiting()) connection.nothing_to_read(now);
    }
    return false;
}

void EpollLoop::write(Client& client, TimePoint now) {
    while (!client.send_blocked) {
        const std::string_view out = client.connection.output();
        if (out.empty()) return;
        const IoResult sent = send_some(client.fd.get(), out);
        if (sent.status == IoStatus::ok) {
            client.connection.sent(sent.bytes, now);
            client.send_blocked = sent.bytes < out.size();  // a short send: the socket buffer is full
        } else if (sent.status == IoStatus::would_block) {
            client.send_blocked = true;
        } else {
            report_socket_error(client.connection, client.fd.get(), sent.error, now);
            return;
        }
    }
}

// After anything happened to a client: does what its connection now asks.
void EpollLoop::settle(std::uint32_t index) {
    Client& client = *clients_.at(index);
    Connection& connection = client.connection;
    switch (connection.fate()) {
        case Connection::Fate::close:
        case Connection::Fate::drop:
            clients_.release(index);  // its fd is closed, which also takes it out of the epoll set
            return;
        case Connection::Fate::linger:
            if (!client.shut_down_writing) {
                ::shutdown(client.fd.get(), SHUT_WR);
                client.shut_down_writing = true;
                client.read_blocked = false;  // read on, to discard until EOF
            }
            break;
        case Connection::Fate::keep:
            break;
    }
    const bool want_out = client.send_blocked && !connection.output().empty();
    if (want_out != client.watching_out) {
        client.watching_out = want_out;
        watch(client.fd.get(), client_events | (want_out ? std::uint32_t{EPOLLOUT} : 0u), clients_.token_of(index),
              EPOLL_CTL_MOD);
    }
    if (connection.wants_read() && !client.read_blocked && !client.on_ready_list) {
        client.on_ready_list = true;
        ready_.push_back(index);
    }
    const auto deadline = connection.deadline();
    if (deadline < client.armed) {
        client.armed = deadline;
        timers_.arm(deadline, clients_.token_of(index));
        timers_.drop_stale(clients_.live(), [this](std::uint64_t stale) { return clients_.find(stale) == nullptr; });
    }
}

void EpollLoop::accept_clients(TimePoint now) {
    for (int n = 0; n < accepts_per_turn; ++n) {
        AcceptOutcome accepted = accept_client(listener_);
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
        const std::uint32_t index = clients_.insert(std::make_unique<Client>(std::move(accepted.client), context_, now));
        Client& client = *clients_.at(index);
        if (client.connection.fate() == Connection::Fate::keep &&
            !watch(client.fd.get(), client_events, clients_.token_of(index))) {
            client.connection.failed("epoll_ctl: " + errno_text(errno), now);
        }
        write(client, now);  // a client turned away for --max-connections is told so at once
        settle(index);
    }
}

void EpollLoop::begin_drain(TimePoint now) {
    draining_ = true;
    accepting_ = false;
    for (std::uint32_t index = 0; index < clients_.slots(); ++index) {
        Client* client = clients_.at(index);
        if (client == nullptr) continue;
        client->connection.stop(now, drain_deadline(context_));
        client->read_blocked = false;  // take in what the client has already sent
        read(*client, now);
        write(*client, now);
        settle(index);
    }
}

bool EpollLoop::set_up() {
    if (!epoll_.valid() || !watch(stop_fd(), EPOLLIN, stop_token) || !watch(quit_fd(), EPOLLIN, quit_token) ||
        !watch(listener_.fd.get(), EPOLLIN | EPOLLET, listener_token)) {
        startup_failed(context_, "epoll_error", "cannot set up epoll: " + errno_text(errno));
        return false;
    }
    return true;
}

bool EpollLoop::wait(TimePoint now) {
    TimePoint wake = timers_.next();
    if (accepting_ && listener_ready_) wake = std::min(wake, std::max(now, accept_paused_until_));
    if (accepting_) wake = std::min(wake, idle_exit_wake(context_, now));
    const int timeout_ms = ready_.empty() ? wait_timeout_ms(wake, now) : 0;
    event_count_ = ::epoll_wait(epoll_.get(), events_.data(), static_cast<int>(events_.size()), timeout_ms);
    if (event_count_ >= 0) return true;
    event_count_ = 0;
    return errno == EINTR;
}

void EpollLoop::on_event(const epoll_event& event, TimePoint now) {
    const std::uint64_t event_token = event.data.u64;
    if (event_token == listener_token) {
        listener_ready_ = true;
        return;
    }
    if (event_token == stop_token || event_token == quit_token) return;  // seen at the top
    Client* found = clients_.find(event_token);
    if (found == nullptr) return;  // its client is gone; the event came late
    Client& client = *found;
    const std::uint32_t flags = event.events;
    if (flags & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) client.hung_up = true;
    // New bytes arrived (an edge): reading may make progress again, even if the last read
    // emptied the socket (the event may come while backpressure holds reading off).
    if (flags & EPOLLIN) client.read_blocked = false;
    if (flags & EPOLLOUT) client.send_blocked = false;
    if (flags & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        if (client.connection.wants_read()) {
            read(client, now);
        } else if (!client.connection.output().empty()) {
            client.send_blocked = false;  // a send reports the error or hang-up
        }
    }
    write(client, now);
    settle(Clients::index_of(event_token));
}

// The clients whose reads stopped at the budget last turn: each gets its next turn now.
void EpollLoop::serve_ready_list(TimePoint now) {
    for (const std::uint32_t index : ready_now_) {
        Client* client = clients_.at(index);
        if (client == nullptr || client->on_ready_list) continue;
        read(*client, now);
        write(*client, now);
        settle(index);
    }
}

void EpollLoop::on_deadline(TimePoint when, std::uint64_t token, TimePoint now) {
    Client* client = clients_.find(token);
    if (client == nullptr || client->armed != when) return;  // gone, or superseded
    client->armed = never;
    client->connection.tick(now);
    write(*client, now);  // --wait answers whose time has come
    settle(Clients::index_of(token));
}

int EpollLoop::run() {
    for (;;) {
        auto now = Clock::now();
        if (stop_requested() && !draining_) begin_drain(now);
        if (quit_requested()) accepting_ = false;
        if (accepting_ && idle_exit_due(context_, all_listener_fds_, now)) {
            quit_for_idleness(context_);
            accepting_ = false;
        }
        if (!accepting_ && clients_.live() == 0) return 0;
        if (!wait(now)) {
            context_.log.server(LogLevel::error, "epoll_error", "epoll_wait() failed: " + errno_text(errno));
            return 1;
        }
        now = Clock::now();

        ready_now_.swap(ready_);
        ready_.clear();
        for (const std::uint32_t index : ready_now_) {
            if (Client* client = clients_.at(index)) client->on_ready_list = false;
        }
        for (int i = 0; i < event_count_; ++i) on_event(events_[i], now);
        serve_ready_list(now);
        if (accepting_ && listener_ready_ && now >= accept_paused_until_) accept_clients(now);
        timers_.expire(now, [&](TimePoint when, std::uint64_t token) { on_deadline(when, token, now); });
    }
}

}  // namespace

std::unique_ptr<EpollServerLoop> make_epoll_loop(const Listener& listener, const std::vector<int>& all_listener_fds,
                                                 const ServerContext& context) {
    auto loop = std::make_unique<EpollLoop>(listener, all_listener_fds, context);
    if (!loop->set_up()) return nullptr;
    return loop;
}

int serve_epoll(Listener& listener, const ServerContext& context) {
    const HardStopWatchdog watchdog(context);
    const std::vector<int> listeners{listener.fd.get()};
    const auto loop = make_epoll_loop(listener, listeners, context);
    if (!loop) return 1;
    trace_thread_name(context, "event loop");
    if (!announce_serving(listener, context)) return 1;
    return loop->run();
}

}  // namespace zen
