#include "servers/server.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <span>

#include "net/io.hpp"
#include "net/signals.hpp"
#include "proto/bytes_repr.hpp"
#include "servers/connection_tracker.hpp"

namespace zen {

const std::vector<Architecture>& architectures() {
    static const std::vector<Architecture> all = {
        {"single", "one client at a time; others wait in the listen backlog (srv_single.py)", serve_single},
        {"threaded", "--workers threads, each accepting and serving one client at a time (srv_threaded.py)",
         serve_threaded},
        {"per-client", "a new thread for every connection (srv_legacy1.py, socketserver)", serve_per_client},
        {"prefork", "--workers processes sharing the listener, replaced when they die (server_multi.py)",
         serve_prefork},
        {"poll", "one thread, a poll() state machine (srv_async.py)", serve_poll},
        {"epoll", "one thread, an edge-triggered epoll reactor", serve_epoll},
        {"callbacks", "an asyncio.Protocol-style protocol on zen's event-loop framework (srv_asyncio1.py)",
         serve_callbacks},
        {"chat", "an asynchat-style channel on the same framework (srv_legacy2.py)", serve_chat},
        {"coroutines", "C++20 coroutines on standalone Asio, one per client (srv_asyncio2.py)", serve_coroutines},
        {"reuseport", "--workers epoll loops, each with its own SO_REUSEPORT listener", serve_reuseport, true},
        {"uring", "one thread, a completion-based io_uring loop (liburing): beyond the book", serve_uring},
    };
    return all;
}

const Architecture* find_architecture(std::string_view name) {
    for (const Architecture& architecture : architectures()) {
        if (architecture.name == name) return &architecture;
    }
    return nullptr;
}

namespace {

// No allocation: the event loops ask this on every turn.
bool idle_exit_due_for(const ServerContext& context, std::span<const int> listener_fds) {
    const auto exit_idle = context.options.exit_idle;
    if (exit_idle.count() <= 0 || !context.decides_idle_exit || context.tracker.idle_for() < exit_idle) return false;
    for (const int fd : listener_fds) {
        pollfd pfd{fd, POLLIN, 0};
        if (::poll(&pfd, 1, 0) > 0 && (pfd.revents & POLLIN) != 0) return false;  // a client is waiting
    }
    return true;
}

}  // namespace

bool idle_exit_due(const ServerContext& context, std::initializer_list<int> listener_fds) {
    return idle_exit_due_for(context, std::span<const int>(listener_fds.begin(), listener_fds.size()));
}

bool idle_exit_due(const ServerContext& context, const std::vector<int>& listener_fds) {
    return idle_exit_due_for(context, listener_fds);
}

void quit_for_idleness(const ServerContext& context) {
    if (request_quit()) {
        context.log.server(LogLevel::info, "idle_exit",
                           "No connection for " + duration_text(context.options.exit_idle) +
                               ": exiting (--exit-idle)");
    }
}

std::string duration_text(std::chrono::milliseconds duration) {
    const auto ms = duration.count();
    return ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms";
}

Clock::time_point drain_deadline(const ServerContext& context) {
    return stop_time() + context.options.drain_timeout;
}

bool admit(const ServerContext& context, const SocketAddress& peer) {
    if (context.options.access.empty()) return true;
    const std::string why = refusal(context.options.access, peer);
    if (why.empty()) return true;
    const std::string name = format_address(peer);
    context.log.connection(LogLevel::warning, "refused", name, "Client " + name + " refused: " + why);
    context.tracker.count(Counter::refused_denied);
    return false;
}

namespace {

constexpr std::string_view busy_answer = "Error: server busy.";

// Says why, then closes our side. What the client has already sent is read and dropped, so the
// close does not turn into a reset that could destroy the message; the caller closes the fd.
void turn_away_busy(int fd) {
    ::send(fd, busy_answer.data(), busy_answer.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    ::shutdown(fd, SHUT_WR);
    char discard[4096];
    for (int i = 0; i < 16 && ::recv(fd, discard, sizeof discard, MSG_DONTWAIT) > 0; ++i) {
    }
}

}  // namespace

ClientIntake::ClientIntake(const ServerContext& context, const SocketAddress& peer, Clock::time_point now)
    : context_(context),
      address_(peer),
      gate_(context.options.proxy.enabled ? std::make_unique<ProxyGate>(context.options.proxy, peer) : nullptr),
      peer_(format_address(peer)),
      reading_header_(gate_ != nullptr && gate_->active()),
      // A direct client's first bytes get the usual idle timeout; a proxy's header its own.
      header_deadline_(!reading_header_ ? Clock::time_point::max()
                       : trusted()      ? deadline_after(now, context.options.proxy.header_timeout)
                                        : deadline_after(now, context.options.idle_timeout)) {
    if (!reading_header_) gate_.reset();
}

std::string ClientIntake::take_remainder() {
    if (gate_ == nullptr || reading_header_) return {};  // nothing yet, or nothing any more
    std::string rest = gate_->take_remainder();
    gate_.reset();
    return rest;
}

bool ClientIntake::open(int fd) {
    // A proxy's own address says nothing of its clients: the rules apply once the header names one.
    if (!trusted() && !admit(context_, address_)) return false;
    const int limit = context_.options.max_connections;
    if (limit > 0 && context_.tracker.active() >= limit) {
        turn_away_busy(fd);
        context_.log.connection(LogLevel::warning, "refused", peer_,
                                "Client " + peer_ + " refused: server busy (--max-connections " +
                                    std::to_string(limit) + ")");
        context_.tracker.count(Counter::refused_busy);
        return false;
    }
    if (!reading_header_) log_accepted(context_, peer_);
    return true;
}

ClientIntake::Step ClientIntake::feed(std::string_view bytes) {
    switch (gate_->feed(bytes)) {
        case ProxyGate::Verdict::wait:
            return Step::wait;
        case ProxyGate::Verdict::refuse:
            context_.log.connection(LogLevel::warning, "refused", peer_, "Client " + peer_ + " refused: " + gate_->reason());
            context_.tracker.count(gate_->forged() ? Counter::refused_denied : Counter::protocol_errors);
            return Step::close;
        case ProxyGate::Verdict::admit:
            break;
    }
    reading_header_ = false;
    if (trusted()) {
        if (!admit(context_, gate_->client())) return Step::close;
        const std::string proxy = peer_;
        peer_ = format_address(gate_->client());
        context_.log.connection(LogLevel::info, "proxied", peer_, "Client " + peer_ + " comes through proxy " + proxy);
    }
    log_accepted(context_, peer_);
    return Step::converse;
}

void ClientIntake::header_timed_out() {
    context_.tracker.count(Counter::timeouts);
    if (trusted()) {
        context_.log.connection(LogLevel::warning, "refused", peer_,
                                "Client " + peer_ + " refused: no PROXY header within " +
                                    duration_text(context_.options.proxy.header_timeout));
    } else {
        context_.log.connection(LogLevel::warning, "client_error", peer_,
                                "Client " + peer_ + " error: idle for " + duration_text(context_.options.idle_timeout));
    }
}

void ClientIntake::header_cut_short() {
    context_.log.connection(LogLevel::info, "closed", peer_,
                            "Client socket to " + peer_ + " closed before its PROXY header was complete");
}

void log_counters(const ServerContext& context, std::string_view when) {
    Log::Fields fields;
    std::string message = "Counters (" + std::string(when) + "):";
    const auto add = [&](std::string_view name, std::uint64_t value) {
        fields.emplace_back(name, value);
        message += (fields.size() == 1 ? " " : ", ") + std::string(name) + " " + std::to_string(value);
    };
    add("active", static_cast<std::uint64_t>(std::max(0, context.tracker.active())));
    for (std::size_t i = 0; i < counter_kinds; ++i) add(counter_names[i], context.tracker.value(static_cast<Counter>(i)));
    context.log.server(LogLevel::info, "counters", message, fields);
}

namespace {

// Held while the reporter writes; fork() takes it first, so no worker is born holding the
// log's lock.
std::mutex reporter_mutex;

sigset_t usr1_only() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    return set;
}

}  // namespace

CounterReporter::CounterReporter(const ServerContext& context) : context_(context) {
    static const bool fork_guard = [] {
        ::pthread_atfork([] { reporter_mutex.lock(); }, [] { reporter_mutex.unlock(); },
                         [] { reporter_mutex.unlock(); });
        return true;
    }();
    (void)fork_guard;
    const sigset_t set = usr1_only();
    ::pthread_sigmask(SIG_BLOCK, &set, nullptr);
    thread_ = std::thread([this] {
        const sigset_t wanted = usr1_only();
        started_.store(true);
        started_.notify_one();
        for (;;) {
            int signal_number = 0;
            if (::sigwait(&wanted, &signal_number) != 0 || stopping_.load()) return;
            const std::lock_guard lock(reporter_mutex);
            log_counters(context_, "SIGUSR1");
        }
    });
    started_.wait(false);
}

CounterReporter::~CounterReporter() {
    stopping_.store(true);
    ::pthread_kill(thread_.native_handle(), SIGUSR1);
    thread_.join();
}

std::uint64_t receive_counted(const ServerContext& context, Session& session, std::string_view bytes) {
    const auto before = session.answered();
    session.receive(bytes);
    const std::uint64_t answers = session.answered() - before;
    if (answers > 0) context.tracker.count(Counter::answered, answers);
    return answers;
}

void log_accepted(const ServerContext& context, const std::string& peer) {
    context.tracker.count(Counter::accepted);
    context.log.connection(LogLevel::info, "accepted", peer, "Accepted connection from " + peer);
}

void log_client_timeout(const ServerContext& context, const std::string& peer, std::string_view what) {
    context.tracker.count(Counter::timeouts);
    context.log.connection(LogLevel::warning, "client_error", peer, "Client " + peer + " error: " + std::string(what));
}

void log_client_error(const ServerContext& context, const std::string& peer, std::string_view what) {
    context.tracker.count(Counter::resets);
    context.log.connection(LogLevel::warning, "client_error", peer,
                           "Client " + peer + " error: " + std::string(what));
}

void log_session_end(const ServerContext& context, const std::string& peer, const Session& session) {
    switch (session.status()) {
        case Session::Status::open:
        case Session::Status::finished:
            context.log.connection(LogLevel::info, "closed", peer, "Client socket to " + peer + " has closed");
            return;
        case Session::Status::partial_at_eof:
            context.log.connection(LogLevel::info, "closed_mid_question", peer,
                                   "Client " + peer + " sent " + bytes_repr(session.unanswered_bytes()) +
                                       " but then closed");
            return;
        case Session::Status::too_long:
            context.tracker.count(Counter::protocol_errors);
            context.log.connection(LogLevel::warning, "client_error", peer,
                                   "Client " + peer + " error: question too long (over " +
                                       std::to_string(context.options.limits.max_question) + " bytes)");
            return;
    }
}

void log_accept_problem(const AcceptOutcome& outcome, const ServerContext& context) {
    if (outcome.status == AcceptStatus::failed) {
        context.log.server(LogLevel::error, "accept_error", "Cannot accept connections: " + errno_text(outcome.error));
        return;
    }
    if (outcome.status != AcceptStatus::out_of_fds) return;
    static std::atomic<std::int64_t> last_logged{0};
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(Clock::now().time_since_epoch()).count();
    std::int64_t previous = last_logged.load();
    if (now != previous && last_logged.compare_exchange_strong(previous, now)) {
        context.log.server(LogLevel::warning, "accept_error",
                           "Cannot accept a connection: " + errno_text(outcome.error) + " (retrying)");
    }
}

bool handle_accept_problem(const AcceptOutcome& outcome, const ServerContext& context) {
    log_accept_problem(outcome, context);
    if (outcome.status == AcceptStatus::failed) return false;
    if (outcome.status == AcceptStatus::out_of_fds) {
        wait_for(stop_fd(), POLLIN, -1, Clock::now() + accept_pause);
    }
    return true;
}

}  // namespace zen
