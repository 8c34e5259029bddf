// What every architecture shares: the options of `zen serve`, the context a server runs with,
// the registry of --arch names, and the book's log lines about clients.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/log.hpp"
#include "net/access.hpp"
#include "net/io.hpp"
#include "net/listener.hpp"
#include "net/proxy_protocol.hpp"
#include "proto/aphorisms.hpp"
#include "proto/session.hpp"

namespace zen {

struct ServeOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = 1060;
    std::string arch = "single";
    int backlog = 128;
    std::string aphorisms_path;  // empty: the book's table
    SessionLimits limits;
    std::chrono::milliseconds idle_timeout{300'000};     // zero: never
    std::chrono::milliseconds question_timeout{30'000};  // zero: never
    std::chrono::milliseconds send_timeout{60'000};      // answers waiting, none taken; zero: never
    int max_connections = 0;  // 0: no limit but the fd limit
    int workers = 0;  // threaded, prefork (4), reuseport (one per core); 0: that default
    std::chrono::milliseconds delay{0};  // per answer, blocking the answering thread (the book's sleep)
    std::chrono::milliseconds wait{0};   // per answer, without blocking where the model allows
    std::chrono::milliseconds exit_idle{0};              // zero: never exit for want of clients
    std::chrono::milliseconds drain_timeout{5000};       // after SIGTERM, before stopping hard
    bool exit_idle_given = false;  // --exit-idle was on the command line (else --inetd-wait uses 8 s)
    bool inetd = false;       // fd 0 is one connected client: serve it and exit
    bool inetd_wait = false;  // fd 0 is the listening socket
    AccessRules access;
    ProxyPolicy proxy;
    std::string user;  // drop to this user once the socket is ready
    LogOptions log;
};

// How long a closing connection keeps discarding input so its last answer survives (DESIGN §2).
inline constexpr std::chrono::milliseconds close_linger{1000};
// Past the drain deadline, how long before a process still running is stopped hard.
inline constexpr std::chrono::milliseconds hard_stop_grace{500};

class ConnectionTracker;

struct ServerContext {
    const ServeOptions& options;
    const AphorismTable& table;
    Log& log;
    ConnectionTracker& tracker;     // shared by every thread and worker process of the server
    bool decides_idle_exit = true;  // false in prefork workers: their parent decides
};

// A deadline `limit` after `from`; a zero limit (a timeout switched off) never comes.
inline Clock::time_point deadline_after(Clock::time_point from, std::chrono::milliseconds limit) {
    return limit.count() > 0 ? from + limit : Clock::time_point::max();
}

// How long a connection may go without progress: --idle-timeout, or, while answers wait for the
// client to take them, --send-timeout if that is shorter. Zero: no limit.
inline std::chrono::milliseconds quiet_limit(const ServeOptions& options, bool answers_waiting) {
    if (!answers_waiting || options.send_timeout.count() == 0) return options.idle_timeout;
    if (options.idle_timeout.count() == 0) return options.send_timeout;
    return std::min(options.idle_timeout, options.send_timeout);
}

// The moment a stopping server closes the connections it is still draining.
Clock::time_point drain_deadline(const ServerContext& context);

// Serves until SIGINT/SIGTERM; returns the process exit code.
using ServeFunction = int (*)(Listener& listener, const ServerContext& context);

struct Architecture {
    std::string_view name;
    std::string_view model;  // one line for --help
    ServeFunction serve;
    bool reuse_port = false;  // its listener must allow SO_REUSEPORT siblings
};

const std::vector<Architecture>& architectures();
const Architecture* find_architecture(std::string_view name);

int serve_single(Listener& listener, const ServerContext& context);
int serve_threaded(Listener& listener, const ServerContext& context);
int serve_per_client(Listener& listener, const ServerContext& context);
int serve_prefork(Listener& listener, const ServerContext& context);
int serve_poll(Listener& listener, const ServerContext& context);
int serve_epoll(Listener& listener, const ServerContext& context);
int serve_reuseport(Listener& listener, const ServerContext& context);
int serve_callbacks(Listener& listener, const ServerContext& context);
int serve_chat(Listener& listener, const ServerContext& context);
int serve_coroutines(Listener& listener, const ServerContext& context);
int serve_uring(Listener& listener, const ServerContext& context);

// --exit-idle: true once the server has had no open conversation for that long and no client
// waits in any of its listeners' backlogs (never when this process does not decide).
bool idle_exit_due(const ServerContext& context, std::initializer_list<int> listener_fds);
bool idle_exit_due(const ServerContext& context, const std::vector<int>& listener_fds);
// Asks the process to quit for --exit-idle, logging it once.
void quit_for_idleness(const ServerContext& context);

// "300 s", "500 ms": a limit as the log and messages show it.
std::string duration_text(std::chrono::milliseconds duration);

// The access rules' verdict on a new client; a refused one is logged (and should be closed
// before a byte is read).
bool admit(const ServerContext& context, const SocketAddress& peer);

// One line with every counter and the open connections: "Counters (SIGUSR1): accepted 3, ...".
void log_counters(const ServerContext& context, std::string_view when);

// Logs the counters whenever SIGUSR1 comes, from a thread of its own, for as long as it lives.
// Construct it before any other thread: it blocks SIGUSR1 in the constructing thread, and so in
// every thread (and prefork worker) started after. fork() waits while it writes a line, and the
// constructor returns only once the thread has started: a fork() during a thread's start-up can
// hand the child an allocator lock no one will release (ASan's allocator is not fork-safe).
class CounterReporter {
public:
    explicit CounterReporter(const ServerContext& context);
    ~CounterReporter();
    CounterReporter(const CounterReporter&) = delete;
    CounterReporter& operator=(const CounterReporter&) = delete;

private:
    const ServerContext& context_;
    std::atomic<bool> stopping_{false};
    std::atomic<bool> started_{false};
    std::thread thread_;
};

// Feeds bytes to the session and adds its new answers to the server's count; returns how many.
std::uint64_t receive_counted(const ServerContext& context, Session& session, std::string_view bytes);

// The book's per-client log lines.
void log_accepted(const ServerContext& context, const std::string& peer);
// How the conversation ended: "has closed", "sent b'...' but then closed", "error: question too long".
void log_session_end(const ServerContext& context, const std::string& peer, const Session& session);
// A conversation ended by an I/O error (counted as a reset) or by a timeout (counted as one).
void log_client_error(const ServerContext& context, const std::string& peer, std::string_view what);
void log_client_timeout(const ServerContext& context, const std::string& peer, std::string_view what);

// The start of every conversation, in every driver: access control before a byte is read, and
// under --proxy-protocol the header phase that finds the real client. Without
// --proxy-protocol it is admit() and log_accepted(), nothing more.
class ClientIntake {
public:
    enum class Step { wait, converse, close };

    ClientIntake(const ServerContext& context, const SocketAddress& peer, Clock::time_point now);

    // Right after accept, before this connection is counted as open: false when the client is
    // refused (access rules; or --max-connections, when it is sent "Error: server busy.").
    // Close it unread.
    bool open(int fd);
    // True while a PROXY header (or a direct client's first bytes) must be read first.
    bool reading_header() const { return reading_header_; }
    Clock::time_point header_deadline() const { return header_deadline_; }
    // Bytes read while reading_header(). converse: hand take_remainder() to the session; it
    // moves out what followed the header, so nothing of the first read stays for the
    // connection's lifetime.
    Step feed(std::string_view bytes);
    std::string take_remainder();
    // The header did not come in time, or the connection ended first: logs it.
    void header_timed_out();
    void header_cut_short();
    // The client as the logs name it: the real one once a header said so.
    const std::string& peer() const { return peer_; }

private:
    bool trusted() const { return gate_ != nullptr && gate_->trusted(); }

    const ServerContext& context_;
    SocketAddress address_;
    // Only under --proxy-protocol, and only until the header phase is over: a gate is some
    // hundreds of bytes, and every connection has an intake.
    std::unique_ptr<ProxyGate> gate_;
    std::string peer_;
    bool reading_header_;
    Clock::time_point header_deadline_;
};

// After an accept() failed for want of descriptors, how long to stop accepting.
inline constexpr std::chrono::milliseconds accept_pause{100};

// Logs an accept() that brought no client: out of descriptors at most once a second, a broken
// listener always.
void log_accept_problem(const AcceptOutcome& outcome, const ServerContext& context);

// Handles an accept() that brought no client. Out of descriptors: logs at most once a second and
// waits 100 ms (or until stop) so the loop never spins. Returns false when the listener is broken
// and the server should give up.
bool handle_accept_problem(const AcceptOutcome& outcome, const ServerContext& context);

}  // namespace zen
