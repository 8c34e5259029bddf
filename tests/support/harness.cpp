#include "support/harness.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <utility>

namespace zen::test {

namespace {

using Clock = std::chrono::steady_clock;

std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::ostringstream contents;
    contents << in.rdbuf();
    return contents.str();
}

std::string temp_path(const std::string& stem) {
    static int counter = 0;
    const char* dir = std::getenv("TMPDIR");
    return std::string(dir != nullptr ? dir : "/tmp") + "/zen-test-" + std::to_string(::getpid()) + "-" +
           std::to_string(++counter) + "-" + stem;
}

pid_t spawn(const std::vector<std::string>& argv, const std::string& out_path, const std::string& err_path) {
    std::vector<char*> args;
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error("fork failed");
    if (pid == 0) {
        const int null_in = ::open("/dev/null", O_RDONLY);
        const int out = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | (err_path == out_path ? O_APPEND : O_TRUNC), 0600);
        ::dup2(null_in, 0);
        ::dup2(out, 1);
        ::dup2(err, 2);
        ::execvp(args[0], args.data());
        ::_exit(127);
    }
    return pid;
}

// Polls waitpid until the child exits or the deadline passes.
bool reap(pid_t pid, Clock::time_point deadline, int& exit_code) {
    for (;;) {
        int status = 0;
        const pid_t done = ::waitpid(pid, &status, WNOHANG);
        if (done == pid) {
            exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            return true;
        }
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
}

}  // namespace

std::string zen_binary() { return ZEN_BINARY; }
std::string source_dir() { return ZEN_SOURCE_DIR; }

RunResult run_command(const std::vector<std::string>& argv, Millis timeout) {
    const std::string out_path = temp_path("out");
    const std::string err_path = temp_path("err");
    const pid_t pid = spawn(argv, out_path, err_path);
    RunResult result;
    if (!reap(pid, Clock::now() + timeout, result.exit_code)) {
        ::kill(pid, SIGKILL);
        int ignored = 0;
        reap(pid, Clock::now() + 5s, ignored);
        result.exit_code = -1;
    }
    result.out = read_file(out_path);
    result.err = read_file(err_path);
    ::unlink(out_path.c_str());
    ::unlink(err_path.c_str());
    return result;
}

RunResult run_zen(const std::vector<std::string>& args, Millis timeout) {
    std::vector<std::string> argv{zen_binary()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_command(argv, timeout);
}

std::unique_ptr<Process> Process::start(const std::vector<std::string>& argv) {
    std::unique_ptr<Process> process(new Process());
    process->output_path_ = temp_path("log");
    process->pid_ = spawn(argv, process->output_path_, process->output_path_);
    return process;
}

Process::~Process() {
    if (!exited_ && pid_ > 0) {
        ::kill(pid_, SIGKILL);
        reap(pid_, Clock::now() + 5s, exit_code_);
    }
    if (!output_path_.empty()) ::unlink(output_path_.c_str());
}

std::string Process::output() const { return read_file(output_path_); }

bool Process::wait_for_output(std::string_view needle, Millis timeout) const {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
        if (output().find(needle) != std::string::npos) return true;
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
}

bool Process::running() {
    if (exited_) return false;
    exited_ = reap(pid_, Clock::now(), exit_code_);
    return !exited_;
}

int Process::wait_exit(Millis timeout) {
    if (exited_) return exit_code_;
    if (reap(pid_, Clock::now() + timeout, exit_code_)) {
        exited_ = true;
        return exit_code_;
    }
    ::kill(pid_, SIGKILL);
    int ignored = 0;
    reap(pid_, Clock::now() + 5s, ignored);
    exited_ = true;
    exit_code_ = -1;
    return -1;
}

int Process::stop(int signal_number, Millis timeout) {
    if (!exited_) ::kill(pid_, signal_number);
    return wait_exit(timeout);
}

namespace {

long own_rss_kib(pid_t pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
    }
    return 0;
}

}  // namespace

std::vector<pid_t> Process::children() const {
    std::vector<pid_t> pids;
    std::ifstream list("/proc/" + std::to_string(pid_) + "/task/" + std::to_string(pid_) + "/children");
    pid_t pid = 0;
    while (list >> pid) pids.push_back(pid);
    return pids;
}

long Process::rss_kib() const {
    long total = own_rss_kib(pid_);
    for (const pid_t child : children()) total += own_rss_kib(child);
    return total;
}

std::unique_ptr<Server> Server::start(const std::vector<std::string>& args, const std::string& host,
                                      const std::vector<std::string>& wrapper) {
    std::vector<std::string> argv = wrapper;
    for (const std::string& word : {zen_binary(), std::string("serve"), host, std::string("-p"), std::string("0")})
        argv.push_back(word);
    argv.insert(argv.end(), args.begin(), args.end());
    auto server = std::make_unique<Server>();
    server->process_ = Process::start(argv);
    if (!server->process_->wait_for_output("Listening at", 10s)) {
        throw std::runtime_error("server did not start: " + server->process_->output());
    }
    // Let the line be complete before parsing it.
    const std::regex listening(R"(Listening at \(.*, (\d+)\))");
    const auto deadline = Clock::now() + 5s;
    std::smatch match;
    for (;;) {
        const std::string log = server->process_->output();
        if (std::regex_search(log, match, listening)) {
            server->port_ = static_cast<std::uint16_t>(std::stoi(match[1].str()));
            return server;
        }
        if (Clock::now() >= deadline) throw std::runtime_error("no port in: " + log);
        std::this_thread::sleep_for(5ms);
    }
}

Connection Connection::open(const std::string& host, std::uint16_t port, const std::string& bind_address) {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    if (::getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found) != 0) {
        throw std::runtime_error("bad test address " + host);
    }
    const int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (!bind_address.empty()) {
        sockaddr_in local{};
        local.sin_family = AF_INET;
        ::inet_pton(AF_INET, bind_address.c_str(), &local.sin_addr);
        if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0) {
            ::freeaddrinfo(found);
            ::close(fd);
            throw std::runtime_error("cannot bind test client to " + bind_address);
        }
    }
    const int rc = ::connect(fd, found->ai_addr, found->ai_addrlen);
    const int error = errno;
    ::freeaddrinfo(found);
    if (rc != 0) {
        ::close(fd);
        throw std::runtime_error("cannot connect to test server: " + std::string(std::strerror(error)));
    }
    const int on = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    return Connection(fd);
}

Connection::Connection(Connection&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}

Connection& Connection::operator=(Connection&& other) noexcept {
    if (this != &other) {
        close();
        fd_ = std::exchange(other.fd_, -1);
    }
    return *this;
}

Connection::~Connection() { close(); }

void Connection::send(std::string_view data) {
    while (!data.empty()) {
        const ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw std::runtime_error("send failed: " + std::string(std::strerror(errno)));
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
}

void Connection::shutdown_write() { ::shutdown(fd_, SHUT_WR); }

namespace {

Drained receive_into(int fd, std::size_t limit, Millis timeout) {
    Drained result;
    const auto deadline = Clock::now() + timeout;
    char buffer[65536];
    while (result.data.size() < limit) {
        const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
        if (left <= 0) {
            result.timed_out = true;
            return result;
        }
        pollfd pfd{fd, POLLIN, 0};
        const int ready = ::poll(&pfd, 1, static_cast<int>(left));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) continue;
        const std::size_t want = std::min(sizeof buffer, limit - result.data.size());
        const ssize_t n = ::recv(fd, buffer, want, MSG_DONTWAIT);
        if (n > 0) {
            result.data.append(buffer, static_cast<std::size_t>(n));
        } else if (n == 0) {
            result.eof = true;
            return result;
        } else if (errno == ECONNRESET) {
            result.reset = true;
            return result;
        } else if (errno != EAGAIN && errno != EINTR) {
            throw std::runtime_error("recv failed: " + std::string(std::strerror(errno)));
        }
    }
    return result;
}

}  // namespace

Drained Connection::receive_bytes(std::size_t n, Millis timeout) { return receive_into(fd_, n, timeout); }

Drained Connection::receive_until_eof(Millis timeout) { return receive_into(fd_, SIZE_MAX, timeout); }

void Connection::reset() {
    if (fd_ < 0) return;
    linger hard{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &hard, sizeof hard);
    close();
}

void Connection::close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
}

std::uint16_t Connection::local_port() const {
    sockaddr_storage local{};
    socklen_t length = sizeof local;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &length);
    if (local.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&local)->sin6_port);
    return ntohs(reinterpret_cast<sockaddr_in*>(&local)->sin_port);
}

bool answered_within(Connection& connection, std::string_view question, std::string_view answer, Millis timeout) {
    connection.send(question);
    return connection.receive_bytes(answer.size(), timeout).data == answer;
}

namespace {

sockaddr_in loopback_address(std::uint16_t port) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    return address;
}

}  // namespace

std::uint16_t free_loopback_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address = loopback_address(0);
    ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
    socklen_t length = sizeof address;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
    ::close(fd);
    return ntohs(address.sin_port);
}

bool port_accepts(std::uint16_t port, Millis timeout) {
    const sockaddr_in address = loopback_address(port);
    for (const auto deadline = std::chrono::steady_clock::now() + timeout;;) {
        const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        const bool connected = ::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
        ::close(fd);
        if (connected || std::chrono::steady_clock::now() >= deadline) return connected;
        std::this_thread::sleep_for(10ms);
    }
}

std::string repeat(std::string_view text, std::size_t times) {
    std::string out;
    out.reserve(text.size() * times);
    for (std::size_t i = 0; i < times; ++i) out.append(text);
    return out;
}

}  // namespace zen::test
