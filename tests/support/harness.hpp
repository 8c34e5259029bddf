// Test harness: starts real `zen` processes on loopback and talks to them over real sockets.
// Every wait is bounded; every process started here is ended here, by its pid.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace zen::test {

using namespace std::chrono_literals;
using Millis = std::chrono::milliseconds;

std::string zen_binary();
std::string source_dir();

struct RunResult {
    int exit_code = -1;  // 128 + signal when killed; -1 when it had to be killed at the timeout
    std::string out;
    std::string err;
};

// Runs a command to completion (bounded by timeout), capturing stdout and stderr.
RunResult run_command(const std::vector<std::string>& argv, Millis timeout = 20s);
RunResult run_zen(const std::vector<std::string>& args, Millis timeout = 20s);

// A background process whose stdout and stderr go to a temporary file.
class Process {
public:
    static std::unique_ptr<Process> start(const std::vector<std::string>& argv);
    ~Process();

    pid_t pid() const { return pid_; }
    std::string output() const;
    // Waits until the output contains needle; false at the timeout.
    bool wait_for_output(std::string_view needle, Millis timeout = 10s) const;
    bool running();
    // Sends the signal and waits for the exit; the exit code, 128 + signal if killed by one,
    // or -1 if it did not exit in time (it is then killed).
    int stop(int signal_number, Millis timeout = 10s);
    // Waits for the process to exit by itself; as stop().
    int wait_exit(Millis timeout);
    // Resident memory in KiB of the process and its child processes, from /proc.
    long rss_kib() const;
    // Its direct child processes (prefork's workers).
    std::vector<pid_t> children() const;

private:
    Process() = default;
    pid_t pid_ = -1;
    std::string output_path_;
    int exit_code_ = -1;
    bool exited_ = false;
};

// `zen serve HOST -p 0 ARGS...`, started and waited on until it prints "Listening at".
class Server {
public:
    // wrapper: a command zen runs under, e.g. {"prlimit", "--nofile=64"}.
    static std::unique_ptr<Server> start(const std::vector<std::string>& args, const std::string& host = "127.0.0.1",
                                         const std::vector<std::string>& wrapper = {});

    std::uint16_t port() const { return port_; }
    Process& process() { return *process_; }
    std::string log() const { return process_->output(); }
    bool wait_for_log(std::string_view needle, Millis timeout = 10s) const {
        return process_->wait_for_output(needle, timeout);
    }

private:
    std::unique_ptr<Process> process_;
    std::uint16_t port_ = 0;
};

struct Drained {
    std::string data;
    bool eof = false;        // orderly close
    bool reset = false;      // ECONNRESET
    bool timed_out = false;  // neither within the timeout
};

// A blocking client connection with bounded waits.
class Connection {
public:
    static Connection open(const std::string& host, std::uint16_t port, const std::string& bind_address = "");
    Connection(Connection&& other) noexcept;
    Connection& operator=(Connection&& other) noexcept;
    ~Connection();

    bool valid() const { return fd_ >= 0; }
    int fd() const { return fd_; }
    void send(std::string_view data);
    void shutdown_write();
    // Reads until exactly n bytes arrived (or EOF/reset/timeout).
    Drained receive_bytes(std::size_t n, Millis timeout = 10s);
    Drained receive_until_eof(Millis timeout = 10s);
    // Closes with SO_LINGER 0: the peer sees a reset.
    void reset();
    void close();
    // The local port, to find this connection in the server's log.
    std::uint16_t local_port() const;

private:
    explicit Connection(int fd) : fd_(fd) {}
    int fd_ = -1;
};

std::string repeat(std::string_view text, std::size_t times);

// A loopback port free a moment ago, for peers that need a number, not 0 (systemd-socket-activate,
// inetd, haproxy, redis-server, memcached).
std::uint16_t free_loopback_port();
// Whether something accepts connections on 127.0.0.1:port, trying until the timeout.
// Each try is a connection the listener sees (and may log).
bool port_accepts(std::uint16_t port, Millis timeout);

// Sends the question and says whether exactly this answer came back in time.
bool answered_within(Connection& connection, std::string_view question, std::string_view answer, Millis timeout);

}  // namespace zen::test
