#include "commands/bench/load_thread.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <ctime>
#include <stdexcept>

namespace zen {

namespace {

constexpr std::int64_t millisecond = 1'000'000;
constexpr std::int64_t deadline_check_period = 5 * millisecond;  // also the reconnect granularity
constexpr std::int64_t longest_backoff = 250 * millisecond;
constexpr std::size_t read_buffer_size = 64 * 1024;
constexpr int events_per_wait = 256;

std::uint64_t event_token(std::uint32_t index, std::uint32_t generation) {
    return (std::uint64_t{generation} << 32) | index;
}

// Kernels before 5.11 have no epoll_pwait2: after its first ENOSYS, epoll_wait's millisecond
// timeouts, rounded up so the loop never spins.
int wait_for_events(int epoll, epoll_event* events, std::int64_t wait_ns, bool& have_epoll_pwait2) {
    const timespec timeout{static_cast<time_t>(wait_ns / 1'000'000'000), static_cast<long>(wait_ns % 1'000'000'000)};
    int ready = -1;
    if (have_epoll_pwait2) {
        ready = epoll_pwait2(epoll, events, events_per_wait, &timeout, nullptr);
        have_epoll_pwait2 = !(ready < 0 && errno == ENOSYS);
    }
    if (!have_epoll_pwait2)
        ready = epoll_wait(epoll, events, events_per_wait, static_cast<int>((wait_ns + millisecond - 1) / millisecond));
    return ready;
}

}  // namespace

std::int64_t monotonic_ns() {
    timespec now{};
    clock_gettime(CLOCK_MONOTONIC, &now);
    return std::int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
}

std::uint64_t LoadTally::error_total() const {
    std::uint64_t total = 0;
    for (std::uint64_t count : errors) total += count;
    return total;
}

void LoadTally::merge(const LoadTally& other) {
    requests += other.requests;
    for (std::size_t i = 0; i < load_error_kinds; ++i) errors[i] += other.errors[i];
    reconnects += other.reconnects;
    opened += other.opened;
    open_at_end += other.open_at_end;
    retried += other.retried;
    scheduled += other.scheduled;
    late += other.late;
    unanswered += other.unanswered;
    behind_ns = std::max(behind_ns, other.behind_ns);
    corrected.merge(other.corrected);
    uncorrected.merge(other.uncorrected);
    series.merge(other.series);
}

LoadThread::LoadThread(const LoadPlan& plan, int connections)
    : plan_(plan), epoll_(epoll_create1(EPOLL_CLOEXEC)), connections_(static_cast<std::size_t>(connections)),
      read_buffer_(read_buffer_size) {
    if (!epoll_.valid()) throw std::runtime_error("epoll_create1 failed");
    dirty_.reserve(connections_.size());
}

void LoadThread::count_error(LoadError kind, std::uint64_t questions, std::int64_t now) {
    const std::uint64_t count = std::max<std::uint64_t>(1, questions);
    errors_total_ += count;
    if (now >= plan_.measure_start_ns) {
        tally_.errors[static_cast<std::size_t>(kind)] += count;
        tally_.series.error(second_of(now), count);
    }
}

std::size_t LoadThread::second_of(std::int64_t now) const {
    return static_cast<std::size_t>(std::max<std::int64_t>(0, now - plan_.measure_start_ns) / 1'000'000'000);
}

void LoadThread::watch(Connection& connection, std::uint32_t index, std::uint32_t events, bool add) {
    epoll_event event{};
    event.events = events;
    event.data.u64 = event_token(index, connection.generation);
    epoll_ctl(epoll_.get(), add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, connection.fd.get(), &event);
}

namespace {

TimePoint trace_time(std::int64_t ns) { return TimePoint(std::chrono::nanoseconds(ns)); }

}  // namespace

// --trace: a span for this opening, named by the local address the server's trace calls its peer.
void LoadThread::trace_opening(Connection& connection, std::int64_t now) {
    connection.trace_id = plan_.trace->next_id();
    connection.connect_started_ns = now;
    SocketAddress local;
    local.length = sizeof local.storage;
    const std::string name = ::getsockname(connection.fd.get(), local.get(), &local.length) == 0 ? format_address(local) : "";
    plan_.trace->begin_async("client", "connection", connection.trace_id, "local", name, trace_time(now));
}

void LoadThread::start_connecting(std::uint32_t index, std::int64_t now) {
    Connection& connection = connections_[index];
    const int fd = socket(plan_.target.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        // Out of descriptors or ports: count it like a refused connect and back off.
        connection.state = State::waiting;
        connection.backoff_ns = std::clamp(connection.backoff_ns * 2, 10 * millisecond, longest_backoff);
        connection.retry_at_ns = now + connection.backoff_ns;
        count_error(LoadError::connect, 0, now);
        return;
    }
    connection.fd = Fd(fd);
    const int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    const int connected = connect(fd, plan_.target.get(), plan_.target.length);
    const int connect_error = errno;
    if (plan_.trace != nullptr) trace_opening(connection, now);
    errno = connect_error;
    if (connected == 0) {
        watch(connection, index, EPOLLIN, true);
        on_open(index, now);
    } else if (errno == EINPROGRESS) {
        connection.state = State::connecting;
        connection.retry_at_ns = now + plan_.timeout_ns;
        watch(connection, index, EPOLLOUT, true);
    } else {
        fail(index, LoadError::connect, now);
    }
}

void LoadThread::on_open(std::uint32_t index, std::int64_t now) {
    Connection& connection = connections_[index];
    connection.state = State::open;
    connection.watching_writes = false;
    if (plan_.trace != nullptr) {
        plan_.trace->complete("connect", trace_time(connection.connect_started_ns), trace_time(now), connection.trace_id);
    }
    if (now >= plan_.measure_start_ns) {
        ++tally_.opened;
        if (connection.opened_before && !connection.recycled) ++tally_.reconnects;
    }
    connection.opened_before = true;
    connection.recycled = false;
    connection.asked_here = 0;
    refill(connection, now);
    if (!connection.dirty && !connection.output.empty()) {
        connection.dirty = true;
        dirty_.push_back(index);
    }
}

void LoadThread::ask(Connection& connection, std::int64_t due, std::int64_t now) {
    const Exchange& exchange = plan_.workload->exchanges[connection.next_exchange];
    connection.output += exchange.question;
    ++connection.asked_here;
    connection.in_flight.push_back({due, now, connection.next_exchange, false, static_cast<std::uint32_t>(connection.asked_here)});
    if (++connection.next_exchange == plan_.workload->exchanges.size()) connection.next_exchange = 0;
}

void LoadThread::refill(Connection& connection, std::int64_t now) {
    const auto depth = static_cast<std::size_t>(plan_.depth);
    // --reconnect: no more than its share of questions on one connection.
    const auto room = [this, &connection, depth] {
        return connection.in_flight.size() < depth &&
               (plan_.reconnect_every == 0 || connection.asked_here < plan_.reconnect_every);
    };
    while (room() && !connection.retry.empty()) {
        const Question question = connection.retry.front();
        connection.retry.pop_front();
        connection.output += plan_.workload->exchanges[question.exchange].question;
        ++connection.asked_here;
        connection.in_flight.push_back(
            {question.due_ns, now, question.exchange, true, static_cast<std::uint32_t>(connection.asked_here)});
    }
    if (plan_.rate == 0) {
        if (now >= plan_.end_ns) return;
        const bool in_window = now >= plan_.measure_start_ns;
        while (room() && (!in_window || tally_.scheduled < plan_.budget)) {
            ask(connection, now, now);
            if (in_window) ++tally_.scheduled;
        }
    } else {
        // Past the window, nothing queued is sent: close_window() counts it unanswered. (An
        // answer read in the same wake-up as the window's end must not send the next question,
        // which would come back late: at most one late answer per connection, in flight at the end.)
        if (now >= plan_.end_ns) return;
        while (room() && !connection.backlog.empty()) {
            ask(connection, connection.backlog.front(), now);
            connection.backlog.pop_front();
        }
    }
}

void LoadThread::on_event(std::uint32_t index, std::uint32_t events, std::int64_t now) {
    Connection& connection = connections_[index];
    if (connection.state == State::connecting) {
        int error = 0;
        socklen_t length = sizeof error;
        getsockopt(connection.fd.get(), SOL_SOCKET, SO_ERROR, &error, &length);
        if (error != 0 || (events & (EPOLLERR | EPOLLHUP)) != 0) {
            fail(index, LoadError::connect, now);
            return;
        }
        watch(connection, index, EPOLLIN, false);
        on_open(index, now);
        return;
    }
    if (connection.state != State::open) return;
    if ((events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) on_readable(index, now);
    if ((events & EPOLLOUT) != 0 && connection.state == State::open && !connection.dirty) {
        connection.dirty = true;
        dirty_.push_back(index);
    }
}

void LoadThread::on_readable(std::uint32_t index, std::int64_t now) {
    Connection& connection = connections_[index];
    const std::uint32_t generation = connection.generation;
    const ssize_t got = recv(connection.fd.get(), read_buffer_.data(), read_buffer_.size(), 0);
    if (got == 0) {
        on_server_close(index, now);
        return;
    }
    if (got < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) fail(index, LoadError::reset, now);
        return;
    }
    std::string_view data(read_buffer_.data(), static_cast<std::size_t>(got));
    const char suffix = plan_.workload->suffix;
    while (!data.empty() && connection.generation == generation) {
        const std::size_t end = answer_end(data, suffix);
        if (end == std::string_view::npos) {
            connection.partial_answer.append(data);
            // Longer than any right answer can be: the server is not speaking this protocol.
            if (connection.partial_answer.size() > plan_.workload->longest_answer + 4096)
                fail(index, LoadError::mismatch, now);
            return;
        }
        if (connection.partial_answer.empty()) {
            on_answer(index, data.substr(0, end), now);
        } else {
            connection.partial_answer.append(data.substr(0, end));
            const std::string answer = std::move(connection.partial_answer);
            connection.partial_answer.clear();
            on_answer(index, answer, now);
        }
        data.remove_prefix(end);
    }
}

void LoadThread::on_answer(std::uint32_t index, std::string_view answer, std::int64_t now) {
    Connection& connection = connections_[index];
    if (connection.in_flight.empty()) {
        count_error(LoadError::mismatch, 1, now);  // an answer nobody asked for
        if (plan_.trace != nullptr) plan_.trace->instant("error", connection.trace_id, "error", "an answer nobody asked for");
        return;
    }
    const Question question = connection.in_flight.front();
    connection.in_flight.pop_front();
    if (plan_.trace != nullptr) {
        plan_.trace->complete("question", trace_time(question.sent_ns), trace_time(now), connection.trace_id,
                              question.number, plan_.rate > 0 ? trace_time(question.due_ns) : never);
    }
    if (answer == plan_.workload->exchanges[question.exchange].answer) {
        ++answered_total_;
        connection.backoff_ns = 0;
        if (question.due_ns >= plan_.measure_start_ns) {
            ++tally_.requests;
            if (now >= plan_.end_ns) ++tally_.late;
            tally_.corrected.record(static_cast<std::uint64_t>(now - question.due_ns));
            tally_.series.answer(second_of(now), static_cast<std::uint64_t>(now - question.due_ns));
            tally_.uncorrected.record(static_cast<std::uint64_t>(now - question.sent_ns));
        }
    } else if (question.due_ns >= plan_.measure_start_ns) {
        if (plan_.trace != nullptr) plan_.trace->instant("error", connection.trace_id, "error", "mismatch");
        ++errors_total_;
        ++tally_.errors[static_cast<std::size_t>(LoadError::mismatch)];
        tally_.series.error(second_of(now), 1);
    } else {
        ++errors_total_;
    }
    if (plan_.reconnect_every != 0 && connection.asked_here >= plan_.reconnect_every && connection.in_flight.empty() &&
        ((now < plan_.end_ns && tally_.scheduled < plan_.budget) || !connection.backlog.empty() ||
         !connection.retry.empty())) {
        recycle(index, now);
        return;
    }
    refill(connection, now);
    if (!connection.dirty && !connection.output.empty()) {
        connection.dirty = true;
        dirty_.push_back(index);
    }
}

void LoadThread::flush(std::uint32_t index, std::int64_t now) {
    Connection& connection = connections_[index];
    connection.dirty = false;
    if (connection.state != State::open) return;
    while (connection.output_sent < connection.output.size()) {
        const ssize_t sent = send(connection.fd.get(), connection.output.data() + connection.output_sent,
                                  connection.output.size() - connection.output_sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (sent > 0) {
            connection.output_sent += static_cast<std::size_t>(sent);
            continue;
        }
        if (sent < 0 && errno == EINTR) continue;
        if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!connection.watching_writes) {
                connection.watching_writes = true;
                watch(connection, index, EPOLLIN | EPOLLOUT, false);
            }
            return;
        }
        fail(index, LoadError::reset, now);
        return;
    }
    connection.output.clear();
    connection.output_sent = 0;
    if (connection.watching_writes) {
        connection.watching_writes = false;
        watch(connection, index, EPOLLIN, false);
    }
}

void LoadThread::fail(std::uint32_t index, LoadError kind, std::int64_t now) {
    Connection& connection = connections_[index];
    count_error(kind, connection.in_flight.size(), now);
    const char* name = load_error_names[static_cast<std::size_t>(kind)];
    if (plan_.trace != nullptr && connection.trace_id != 0) plan_.trace->instant("error", connection.trace_id, "error", name);
    disconnect(connection,
               kind == LoadError::connect ? std::clamp(connection.backoff_ns * 2, 10 * millisecond, longest_backoff)
                                          : std::clamp(connection.backoff_ns * 2, millisecond, longest_backoff),
               now, name);
}

void LoadThread::on_server_close(std::uint32_t index, std::int64_t now) {
    Connection& connection = connections_[index];
    if (!connection.partial_answer.empty()) {
        fail(index, LoadError::closed, now);  // cut in the middle of an answer: no clean close
        return;
    }
    std::uint64_t lost = 0;
    for (Question question : connection.in_flight) {
        if (question.retried) {
            ++lost;
            continue;
        }
        question.retried = true;
        if (question.due_ns >= plan_.measure_start_ns) ++tally_.retried;
        connection.retry.push_back(question);
    }
    if (lost > 0) count_error(LoadError::closed, lost, now);
    connection.in_flight.clear();
    // The usual first backoff: a server closing every connection at once is not hammered.
    disconnect(connection, std::clamp(connection.backoff_ns * 2, millisecond, longest_backoff), now, "server closed");
}

void LoadThread::recycle(std::uint32_t index, std::int64_t now) {
    Connection& connection = connections_[index];
    const std::int64_t backoff = connection.backoff_ns;
    disconnect(connection, 0, now, "--reconnect");
    connection.backoff_ns = backoff;
    connection.recycled = true;
    start_connecting(index, now);
}

void LoadThread::disconnect(Connection& connection, std::int64_t backoff_ns, std::int64_t now, const char* reason) {
    if (plan_.trace != nullptr && connection.trace_id != 0 && connection.fd.valid()) {
        plan_.trace->end_async("client", "connection", connection.trace_id, "reason", reason, trace_time(now));
    }
    connection.fd.reset();  // closing also removes it from the epoll set
    ++connection.generation;
    connection.state = State::waiting;
    connection.in_flight.clear();
    connection.output.clear();
    connection.output_sent = 0;
    connection.partial_answer.clear();
    connection.watching_writes = false;
    connection.backoff_ns = backoff_ns;
    connection.retry_at_ns = now + connection.backoff_ns;
}

void LoadThread::schedule_due_questions(std::int64_t now) {
    if (plan_.rate == 0 || connections_.empty()) return;
    const double interval = 1e9 / plan_.rate;
    for (;;) {
        const auto due = plan_.start_ns + static_cast<std::int64_t>((static_cast<double>(scheduled_) + plan_.phase) *
                                                                    interval);
        if (due > now || due >= plan_.end_ns) return;
        if (due >= plan_.measure_start_ns && tally_.scheduled >= plan_.budget) return;
        ++scheduled_;
        if (due >= plan_.measure_start_ns) ++tally_.scheduled;
        const std::uint32_t index = next_connection_;
        if (++next_connection_ == connections_.size()) next_connection_ = 0;
        Connection& connection = connections_[index];
        connection.backlog.push_back(due);
        if (connection.state == State::open) {
            refill(connection, now);
            if (!connection.dirty && !connection.output.empty()) {
                connection.dirty = true;
                dirty_.push_back(index);
            }
        }
    }
}

void LoadThread::check_deadlines(std::int64_t now) {
    const bool past_end = now >= plan_.end_ns + plan_.timeout_ns;
    for (std::uint32_t index = 0; index < connections_.size(); ++index) {
        Connection& connection = connections_[index];
        while (!connection.retry.empty() && (past_end || now - connection.retry.front().due_ns > plan_.timeout_ns)) {
            count_error(LoadError::timeout, 1, std::max(connection.retry.front().due_ns, std::int64_t{0}));
            connection.retry.pop_front();
        }
        while (!connection.backlog.empty() && (past_end || now - connection.backlog.front() > plan_.timeout_ns)) {
            // Counted in the window only if the question was due in it.
            count_error(LoadError::timeout, 1, std::max(connection.backlog.front(), std::int64_t{0}));
            connection.backlog.pop_front();
        }
        switch (connection.state) {
            case State::waiting:
                if (now >= connection.retry_at_ns && now < plan_.end_ns) start_connecting(index, now);
                break;
            case State::connecting:
                if (now >= connection.retry_at_ns || past_end) fail(index, LoadError::connect, now);
                break;
            case State::open:
                if (!connection.in_flight.empty() &&
                    (past_end || now - connection.in_flight.front().sent_ns > plan_.timeout_ns))
                    fail(index, LoadError::timeout, now);
                break;
        }
    }
}

bool LoadThread::finished(std::int64_t now) const {
    if (now < plan_.end_ns) return false;
    if (now >= plan_.end_ns + plan_.timeout_ns) return true;
    return std::all_of(connections_.begin(), connections_.end(),
                       [](const Connection& c) { return c.in_flight.empty() && c.backlog.empty() && c.retry.empty(); });
}

void LoadThread::publish() {
    answered_live_.store(answered_total_, std::memory_order_relaxed);
    errors_live_.store(errors_total_, std::memory_order_relaxed);
}

void LoadThread::close_window() {
    window_closed_ = true;
    std::int64_t oldest = plan_.end_ns;
    const auto in_window = [this](std::int64_t due) { return due >= plan_.measure_start_ns; };
    for (Connection& connection : connections_) {
        if (connection.state == State::open) ++tally_.open_at_end;
        for (const Question& question : connection.in_flight)
            if (in_window(question.due_ns)) oldest = std::min(oldest, question.due_ns);
        for (const Question& question : connection.retry)
            if (in_window(question.due_ns)) oldest = std::min(oldest, question.due_ns);
        for (std::int64_t due : connection.backlog) {
            if (!in_window(due)) continue;
            oldest = std::min(oldest, due);
            ++tally_.unanswered;
        }
        connection.backlog.clear();
    }
    tally_.behind_ns = plan_.end_ns - oldest;
}

bool LoadThread::budget_spent() const {
    if (plan_.budget == UINT64_MAX || tally_.scheduled < plan_.budget) return false;
    return std::all_of(connections_.begin(), connections_.end(),
                       [](const Connection& c) { return c.in_flight.empty() && c.backlog.empty() && c.retry.empty(); });
}

void LoadThread::run() {
    // The default 50 us of timer slack would show up in every open-loop latency.
    prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    if (plan_.trace != nullptr) plan_.trace->name_thread("load thread " + std::to_string(plan_.thread_number));
    std::int64_t now = monotonic_ns();
    open_connections(now);
    next_check_ns_ = now + deadline_check_period;
    for (;;) {
        now = monotonic_ns();
        if (follow_control() || catch_up(now)) break;
        wait_and_dispatch(now);
    }
    settle(now);
}

void LoadThread::open_connections(std::int64_t now) {
    for (std::uint32_t index = 0; index < connections_.size(); ++index) {
        if (plan_.connect_rate > 0 && index > 0) {
            // The ramp: check_deadlines opens each when its turn comes.
            connections_[index].retry_at_ns =
                plan_.start_ns + static_cast<std::int64_t>(static_cast<double>(index) * 1e9 / plan_.connect_rate);
        } else {
            start_connecting(index, now);
        }
    }
}

bool LoadThread::follow_control() {
    if (plan_.control == nullptr) return false;
    plan_.end_ns = std::min(plan_.end_ns, plan_.control->stop_ns.load(std::memory_order_relaxed));
    return plan_.control->abandon.load(std::memory_order_relaxed);
}

bool LoadThread::catch_up(std::int64_t now) {
    schedule_due_questions(now);
    if (!window_closed_ && now >= plan_.measure_start_ns && budget_spent()) plan_.end_ns = now;
    if (now >= plan_.end_ns && !window_closed_) close_window();
    if (now >= next_check_ns_) {
        check_deadlines(now);
        next_check_ns_ = now + deadline_check_period;
    }
    for (std::size_t i = 0; i < dirty_.size(); ++i) flush(dirty_[i], now);
    dirty_.clear();
    publish();
    return finished(now);
}

std::int64_t LoadThread::next_wake(std::int64_t now) const {
    std::int64_t wake = std::min(next_check_ns_, now >= plan_.end_ns ? plan_.end_ns + plan_.timeout_ns : plan_.end_ns);
    if (plan_.rate != 0) {
        const double interval = 1e9 / plan_.rate;
        const auto due =
            plan_.start_ns + static_cast<std::int64_t>((static_cast<double>(scheduled_) + plan_.phase) * interval);
        if (due < plan_.end_ns) wake = std::min(wake, due);
    }
    return wake;
}

void LoadThread::wait_and_dispatch(std::int64_t now) {
    epoll_event events[events_per_wait];  // on the stack: nothing allocated per wake-up
    const int ready = wait_for_events(epoll_.get(), events, std::max<std::int64_t>(0, next_wake(now) - now),
                                      have_epoll_pwait2_);
    if (ready <= 0) return;
    now = monotonic_ns();
    for (int i = 0; i < ready; ++i) {
        const auto index = static_cast<std::uint32_t>(events[i].data.u64 & 0xffffffffu);
        const auto generation = static_cast<std::uint32_t>(events[i].data.u64 >> 32);
        if (index < connections_.size() && connections_[index].generation == generation)
            on_event(index, events[i].events, now);
    }
}

void LoadThread::settle(std::int64_t now) {
    if (!window_closed_) close_window();
    // Whatever is still unanswered at the hard end was lost to the timeout, unless a second
    // signal cut the wait short: then it is only unanswered.
    const bool abandoned = plan_.control != nullptr && plan_.control->abandon.load(std::memory_order_relaxed);
    for (std::uint32_t index = 0; index < connections_.size(); ++index) {
        Connection& connection = connections_[index];
        if (abandoned) {
            for (const Question& question : connection.in_flight)
                if (question.due_ns >= plan_.measure_start_ns) ++tally_.unanswered;
            for (const Question& question : connection.retry)
                if (question.due_ns >= plan_.measure_start_ns) ++tally_.unanswered;
            connection.in_flight.clear();
            connection.retry.clear();
        }
        if (!connection.in_flight.empty()) count_error(LoadError::timeout, connection.in_flight.size(), now);
        for (const Question& question : connection.retry)
            if (question.due_ns >= plan_.measure_start_ns) count_error(LoadError::timeout, 1, now);
        if (plan_.trace != nullptr && connection.trace_id != 0 && connection.fd.valid()) {
            if (!connection.in_flight.empty()) plan_.trace->instant("error", connection.trace_id, "error", "timeout");
            plan_.trace->end_async("client", "connection", connection.trace_id, "reason", "the run ended", trace_time(now));
        }
        connection.fd.reset();
    }
    publish();
}

}  // namespace zen
