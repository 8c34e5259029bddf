// The blocking conversation driver, shared by --arch single, threaded, per-client, prefork and the
// inetd/systemd one-client modes.
//
// Model: the thread blocks where the book's does, in recv() and send() on the client's socket:
// one recv() per read and one send() per batch of answers, two system calls per answer. The
// rules (deadlines, limits, the drain, the log) are the Connection's (src/conn/connection.hpp).
// Deadlines: the socket's SO_RCVTIMEO and SO_SNDTIMEO are kept no later than the connection's next
// deadline (within 1/64 of the timeout, 50 ms at most), so a blocked call returns EAGAIN when it
// is due; they are set only when they must shrink, or after they ran out, so a conversation that
// keeps moving sets them once.
// Stop: SIGTERM wakes no thread blocked in recv() by itself. The watchdog thread sends every
// registered conversation SIGURG until it has seen the stop; the handler does nothing and is
// installed with SA_RESTART, but recv() and send() on a socket with a timeout are never restarted
// (signal(7)), so exactly those calls return EINTR. Every 20 ms while a conversation has not
// seen the stop, since a signal that lands just before the recv() is entered wakes nothing.
// EAGAIN: a socket timeout ran out (the connection's tick() says what it means). EINTR: the loop
// looks at the stop again. Short writes: the rest is sent by the next send(). EOF: the session
// answers what came before it. --wait: the thread waits for its own client's next question or
// the answer's time, whichever comes first.
#include "servers/blocking.hpp"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <mutex>
#include <thread>

#include "conn/connection.hpp"
#include "conn/connection_tracker.hpp"
#include "loop/timer_queue.hpp"
#include "net/io.hpp"
#include "net/signals.hpp"
#include "runtime/accepting.hpp"
#include "runtime/tracing.hpp"

namespace zen {

namespace {

// --- the stop, for threads blocked in recv() and send() -------------------------------------

constexpr int wake_signal = SIGURG;  // ignored by default; nothing else here uses it

extern "C" void on_wake_signal(int) {}

// A conversation's thread, in the list the watchdog wakes. Intrusive: registering allocates nothing.
struct Waiter {
    pthread_t thread = ::pthread_self();
    bool stop_seen = false;  // under waiters_mutex
    Waiter* previous = nullptr;
    Waiter* next = nullptr;
};

std::mutex waiters_mutex;
Waiter* first_waiter = nullptr;

void install_wake_handler() {
    static std::once_flag installed;
    std::call_once(installed, [] {
        struct sigaction action {};
        action.sa_handler = on_wake_signal;
        sigemptyset(&action.sa_mask);
        action.sa_flags = SA_RESTART;
        ::sigaction(wake_signal, &action, nullptr);
    });
}

class WakeOnStop {
public:
    WakeOnStop() {
        install_wake_handler();
        const std::lock_guard lock(waiters_mutex);
        waiter_.next = first_waiter;
        if (first_waiter != nullptr) first_waiter->previous = &waiter_;
        first_waiter = &waiter_;
    }
    ~WakeOnStop() {
        const std::lock_guard lock(waiters_mutex);
        if (waiter_.previous != nullptr) waiter_.previous->next = waiter_.next;
        if (waiter_.next != nullptr) waiter_.next->previous = waiter_.previous;
        if (first_waiter == &waiter_) first_waiter = waiter_.next;
    }
    WakeOnStop(const WakeOnStop&) = delete;
    WakeOnStop& operator=(const WakeOnStop&) = delete;

    // From here on the conversation's own deadlines bound every call: no more signals needed.
    void stop_seen() {
        const std::lock_guard lock(waiters_mutex);
        waiter_.stop_seen = true;
    }

private:
    Waiter waiter_;
};

void wake_blocked_conversations() {
    const std::lock_guard lock(waiters_mutex);  // a registered thread cannot end while we signal it
    for (Waiter* waiter = first_waiter; waiter != nullptr; waiter = waiter->next) {
        if (!waiter->stop_seen) ::pthread_kill(waiter->thread, wake_signal);
    }
}

// --- deadlines as socket timeouts -----------------------------------------------------------

class SocketTimeout {
public:
    SocketTimeout(int fd, int option) : fd_(fd), option_(option) {}

    // The next blocking call returns by `deadline` at the latest.
    void bound(TimePoint deadline, TimePoint now) {
        using std::chrono::milliseconds;
        const auto left = deadline == never ? longest : std::chrono::ceil<milliseconds>(deadline - now);
        const milliseconds wanted = std::clamp<milliseconds>(left, milliseconds(1), longest);
        // Shorter is harmless (the call returns early, and the next one sets it afresh); longer
        // only by a sliver, so that the time a loop turn takes does not cost a setsockopt().
        if (set_.count() != 0 && set_ <= wanted + std::min(set_ / 64, milliseconds(50))) return;
        timeval value{};
        value.tv_sec = static_cast<time_t>(wanted.count() / 1000);
        value.tv_usec = static_cast<suseconds_t>((wanted.count() % 1000) * 1000);
        ::setsockopt(fd_, SOL_SOCKET, option_, &value, sizeof value);
        set_ = wanted;
    }
    // A call returned EAGAIN: the timeout ran out, and is set afresh next time.
    void ran_out() { set_ = std::chrono::milliseconds(0); }
    bool is_set() const { return set_.count() != 0; }

private:
    // Also the timeout when nothing is due: with none, a signal's SA_RESTART would restart the call.
    static constexpr std::chrono::milliseconds longest{3'600'000};

    int fd_;
    int option_;
    std::chrono::milliseconds set_{0};
};

bool would_block(int error) { return error == EAGAIN || error == EWOULDBLOCK; }

}  // namespace

// --- waiting for a client -------------------------------------------------------------------

ListenerWake wait_for_client(const Listener& listener, const ServerContext& context) {
    for (;;) {
        const TimePoint now = Clock::now();
        if (idle_exit_due(context, {listener.fd.get()}, now)) {
            quit_for_idleness(context);
            return ListenerWake::quit;
        }
        pollfd fds[3] = {{listener.fd.get(), POLLIN, 0}, {stop_fd(), POLLIN, 0}, {quit_fd(), POLLIN, 0}};
        const int n = ::poll(fds, 3, wait_timeout_ms(idle_exit_wake(context, now), now));
        if (n < 0 && errno != EINTR) return ListenerWake::connection;  // accept() will report it
        if (fds[1].revents != 0) return ListenerWake::stop;
        if (fds[2].revents != 0) return ListenerWake::quit;
        if (fds[0].revents != 0) return ListenerWake::connection;
    }
}

int accept_loop(Listener& listener, const ServerContext& context) {
    for (;;) {
        if (wait_for_client(listener, context) != ListenerWake::connection) return 0;
        AcceptOutcome accepted = accept_client(listener, true);
        if (accepted.status == AcceptStatus::accepted) {
            converse(std::move(accepted.client), context);
        } else if (!handle_accept_problem(accepted, context)) {
            return 1;
        }
    }
}

// --- the conversation -----------------------------------------------------------------------

namespace {

// One conversation's socket work on its thread: each call blocks at most until the connection's
// next deadline, and reports what happened to the connection. The clock is read once after every
// call that may have waited, and nowhere else.
class BlockingConversation {
public:
    BlockingConversation(Connection& connection, int fd)
        : connection_(connection), fd_(fd), receive_timeout_(fd, SO_RCVTIMEO), send_timeout_(fd, SO_SNDTIMEO) {}

    // Sends some of out; returns the time after the call.
    TimePoint send(std::string_view out, TimePoint now);
    // Reads once (without waiting while the server is stopping); returns the time after the call.
    TimePoint receive(TimePoint now);

private:
    Connection& connection_;
    int fd_;
    SocketTimeout receive_timeout_;
    SocketTimeout send_timeout_;
    char buffer_[16 * 1024];
};

TimePoint BlockingConversation::send(std::string_view out, TimePoint now) {
    // Until a send has found the socket full, none waits: no timeout is needed for it.
    int flags = MSG_NOSIGNAL;
    if (send_timeout_.is_set()) {
        send_timeout_.bound(connection_.deadline(), now);
    } else {
        flags |= MSG_DONTWAIT;
    }
    const ssize_t n = ::send(fd_, out.data(), out.size(), flags);
    const int error = errno;
    now = Clock::now();
    if (n >= 0) {
        connection_.sent(static_cast<std::size_t>(n), now);
        if (static_cast<std::size_t>(n) < out.size() && !send_timeout_.is_set()) {
            send_timeout_.bound(connection_.deadline(), now);
        }
    } else if (would_block(error)) {
        if (send_timeout_.is_set()) send_timeout_.ran_out();
        send_timeout_.bound(connection_.deadline(), now);
    } else if (error != EINTR) {
        report_socket_error(connection_, fd_, error, now);
    }
    return now;
}

TimePoint BlockingConversation::receive(TimePoint now) {
    ssize_t n;
    const bool without_waiting = connection_.reads_without_waiting();
    if (without_waiting) {
        n = ::recv(fd_, buffer_, sizeof buffer_, MSG_DONTWAIT);
    } else {
        receive_timeout_.bound(connection_.deadline(), now);
        n = ::recv(fd_, buffer_, sizeof buffer_, 0);
    }
    const int error = errno;
    now = Clock::now();
    if (n > 0) {
        connection_.received({buffer_, static_cast<std::size_t>(n)}, now);
    } else if (n == 0) {
        connection_.received_eof(now);
    } else if (would_block(error)) {
        if (without_waiting) {
            connection_.nothing_to_read(now);
        } else {
            receive_timeout_.ran_out();  // the deadline's tick comes at the top
        }
    } else if (error != EINTR) {
        report_socket_error(connection_, fd_, error, now);
    }
    return now;
}

}  // namespace

void converse(AcceptedClient client, const ServerContext& context) {
    Connection connection(context, client.peer, Clock::now());
    const int fd = client.fd.get();
    WakeOnStop wake;
    BlockingConversation conversation(connection, fd);
    bool shut_down_writing = false;
    TimePoint now = Clock::now();
    for (;;) {
        if (!connection.stopping() && stop_requested()) {
            connection.stop(now, drain_deadline(context));
            wake.stop_seen();
        }
        if (now >= connection.deadline()) connection.tick(now);

        const Connection::Fate fate = connection.fate();
        if (fate == Connection::Fate::close || fate == Connection::Fate::drop) return;  // the Fd closes
        if (fate == Connection::Fate::linger && !shut_down_writing) {
            ::shutdown(fd, SHUT_WR);
            shut_down_writing = true;
        }
        if (const std::string_view out = connection.output(); !out.empty()) {
            now = conversation.send(out, now);
        } else if (connection.wants_read()) {
            now = conversation.receive(now);
        } else {
            // Nothing to send yet and nothing to read: answers held until their time.
            std::this_thread::sleep_until(std::min(connection.deadline(), now + std::chrono::seconds(1)));
            now = Clock::now();
        }
    }
}

BlockingStopWatchdog::BlockingStopWatchdog(const ServerContext& context)
    : watchdog_(context, wake_blocked_conversations) {}

void serve_one(AcceptedClient client, const ServerContext& context) {
    const BlockingStopWatchdog watchdog(context);
    trace_thread_name(context, "conversation");
    set_blocking(client.fd.get());
    converse(std::move(client), context);
}

}  // namespace zen
