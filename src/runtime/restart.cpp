#include "runtime/restart.hpp"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "net/io.hpp"
#include "net/signals.hpp"

extern char** environ;

namespace zen {

namespace {

std::string executable;  // absolute, or empty when it could not be found at start-up
std::vector<std::string> arguments;

// argv[0] as the shell found it: a path with a slash is made absolute against the working
// directory of the start; a bare name is looked up in PATH. Symlinks are kept, not resolved: an
// upgrade that repoints /usr/bin/zen must run the new target.
std::string find_executable(const std::string& name) {
    if (name.find('/') != std::string::npos) {
        if (name.front() == '/') return name;
        char cwd[PATH_MAX];
        if (::getcwd(cwd, sizeof cwd) == nullptr) return {};
        return std::string(cwd) + "/" + name;
    }
    const char* path = std::getenv("PATH");
    std::string_view dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
    while (!dirs.empty()) {
        const std::size_t colon = dirs.find(':');
        const std::string_view dir = dirs.substr(0, colon);
        const std::string candidate = std::string(dir.empty() ? "." : dir) + "/" + name;
        if (::access(candidate.c_str(), X_OK) == 0) return find_executable(candidate);
        dirs = colon == std::string_view::npos ? std::string_view() : dirs.substr(colon + 1);
    }
    return {};
}

std::string describe_status(int status) {
    if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return std::string("was killed by signal ") + ::strsignal(WTERMSIG(status));
    return "ended";
}

bool names_a_listen_variable(std::string_view entry) {
    for (std::string_view name : {"LISTEN_FDS=", "LISTEN_PID=", "LISTEN_FDNAMES=", "NOTIFY_SOCKET="}) {
        if (entry.substr(0, name.size()) == name) return true;
    }
    return false;
}

// Writes pid in decimal into text (room for 20 digits and a NUL); no allocation, no locale, so
// the child can call it between fork() and exec().
void write_pid(char* text, pid_t pid) {
    char digits[24];
    int n = 0;
    auto value = static_cast<unsigned long>(pid);
    do {
        digits[n++] = static_cast<char>('0' + value % 10);
        value /= 10;
    } while (value != 0);
    while (n > 0) *text++ = digits[--n];
    *text = '\0';
}

// A notification socket like systemd's: the new process's sd_notify("READY=1") lands here.
// Abstract (no file to clean up), with the sender's credentials, so a stranger's READY=1 on
// this guessable name is told apart from the new process's.
Result<std::pair<Fd, std::string>> open_notify_socket() {
    Fd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd.valid()) return Error{"cannot create a notification socket: " + errno_text(errno)};
    const int on = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof on);
    static std::atomic<unsigned> serial{0};
    const std::string name = "zen-restart-" + std::to_string(::getpid()) + "-" + std::to_string(serial.fetch_add(1));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path + 1, name.data(), name.size());  // sun_path[0] = 0: abstract
    const auto length = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&address), length) != 0) {
        return Error{"cannot bind a notification socket: " + errno_text(errno)};
    }
    return std::make_pair(std::move(fd), "@" + name);
}

// Whether a datagram waiting on the socket says READY=1 and comes from pid.
bool ready_message_from(int fd, pid_t pid) {
    char data[4096];
    iovec io{data, sizeof data - 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
    msghdr message{};
    message.msg_iov = &io;
    message.msg_iovlen = 1;
    message.msg_control = control;
    message.msg_controllen = sizeof control;
    const ssize_t got = ::recvmsg(fd, &message, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    if (got < 0) return false;
    bool from_pid = false;
    for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr; header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_CREDENTIALS) {
            ucred credentials{};
            std::memcpy(&credentials, CMSG_DATA(header), sizeof credentials);
            from_pid = credentials.pid == pid;
        }
    }
    const std::string_view text(data, static_cast<std::size_t>(got));
    // sd_notify sends newline-separated assignments.
    return from_pid && (text == "READY=1" || text.substr(0, 8) == "READY=1\n" ||
                        text.find("\nREADY=1") != std::string_view::npos);
}

// Whether closing a SO_REUSEPORT listener hands the connections queued in it to a sibling
// (Linux 5.14) instead of resetting them.
bool kernel_migrates_queued_connections() {
    char value = '0';
    const int fd = ::open("/proc/sys/net/ipv4/tcp_migrate_req", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    [[maybe_unused]] const ssize_t n = ::read(fd, &value, 1);
    ::close(fd);
    return value == '1';
}

}  // namespace

void remember_command_line(int argc, char** argv) {
    if (argc < 1) return;
    executable = find_executable(argv[0]);
    arguments.assign(argv, argv + argc);
}

RestartOnUsr2::RestartOnUsr2(const ServerContext& context, int listener_fd)
    : context_(context), listener_fd_(listener_fd), wake_(::eventfd(0, EFD_CLOEXEC)) {
    const sigset_t usr2 = signal_set({SIGUSR2});
    ::pthread_sigmask(SIG_BLOCK, &usr2, nullptr);
    // The thread starts with every signal blocked and waits for SIGUSR2 only: SIGUSR1 (the
    // counter reporter's) or a stop signal must never be delivered to it.
    sigset_t all;
    sigfillset(&all);
    sigset_t previous;
    ::pthread_sigmask(SIG_BLOCK, &all, &previous);
    thread_ = std::thread([this] {
        const sigset_t wanted = signal_set({SIGUSR2});
        started_.store(true);
        started_.notify_one();
        for (;;) {
            int signal_number = 0;
            if (::sigwait(&wanted, &signal_number) != 0 || stopping_.load()) return;
            restart();
        }
    });
    ::pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    started_.wait(false);
}

RestartOnUsr2::~RestartOnUsr2() {
    stopping_.store(true);
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(wake_.get(), &one, sizeof one);
    ::pthread_kill(thread_.native_handle(), SIGUSR2);
    thread_.join();
}

namespace {

// Everything the new process needs, made before fork(): between fork() and exec() only
// async-signal-safe calls are allowed in a threaded process.
struct Launch {
    std::vector<std::string> environment;
    std::vector<char*> envp;
    std::vector<char*> argv;
    char* listen_pid_value = nullptr;  // LISTEN_PID's digits, written by the child
};

Launch prepare_launch(int listener, const std::string& notify_socket) {
    Launch launch;
    for (char** entry = environ; *entry != nullptr; ++entry) {
        if (!names_a_listen_variable(*entry)) launch.environment.emplace_back(*entry);
    }
    launch.environment.push_back("NOTIFY_SOCKET=" + notify_socket);
    std::size_t listen_pid_index = 0;
    if (listener >= 0) {
        launch.environment.emplace_back("LISTEN_FDS=1");
        listen_pid_index = launch.environment.size();
        launch.environment.emplace_back("LISTEN_PID=" + std::string(24, '\0'));
    }
    for (std::string& entry : launch.environment) launch.envp.push_back(entry.data());
    launch.envp.push_back(nullptr);
    for (std::string& argument : arguments) launch.argv.push_back(argument.data());
    launch.argv.push_back(nullptr);
    if (listen_pid_index != 0) {
        launch.listen_pid_value = launch.environment[listen_pid_index].data() + std::strlen("LISTEN_PID=");
    }
    return launch;
}

// In the child, between fork() and exec(): the listener onto fd 3, every other descriptor closed.
[[noreturn]] void exec_successor(int listener, const Launch& launch) {
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);  // a blocked mask would survive exec()
    if (listener >= 0) {
        if (listener == SD_LISTEN_FDS_START) {
            ::fcntl(listener, F_SETFD, 0);
        } else if (::dup2(listener, SD_LISTEN_FDS_START) < 0) {
            ::_exit(127);
        }
        write_pid(launch.listen_pid_value, ::getpid());
    }
    // Only the socket passes: a descriptor some library opened without O_CLOEXEC (Asio's
    // accepted connections) would otherwise keep a client's connection open in the new process.
    ::syscall(SYS_close_range, listener >= 0 ? SD_LISTEN_FDS_START + 1 : SD_LISTEN_FDS_START, ~0U, 0);
    ::execve(executable.c_str(), launch.argv.data(), launch.envp.data());
    ::_exit(127);
}

}  // namespace

// Why a hand-over cannot start now, or "" when it can.
std::string RestartOnUsr2::refusal() const {
    if (stop_requested() || quit_requested() || successor_.load() != 0) {
        return "the server is already stopping, no new process started";
    }
    if (executable.empty()) return "the zen executable was not found at start-up";
    if (listener_fd_ < 0 && context_.options.port == 0) {
        return "--arch reuseport binds the port again in the new process, so it needs a fixed --port, not 0";
    }
    return {};
}

void RestartOnUsr2::restart() {
    Log& log = context_.log;
    const auto refuse = [&](const std::string& why) {
        log.server(LogLevel::warning, "restart_failed", "SIGUSR2: " + why + "; still serving");
    };
    if (const std::string why = refusal(); !why.empty()) {
        refuse(why);
        return;
    }
    if (listener_fd_ < 0 && !kernel_migrates_queued_connections()) {
        log.server(LogLevel::warning, "restart",
                   "SIGUSR2 with SO_REUSEPORT listeners: net.ipv4.tcp_migrate_req is 0, so connections that "
                   "reach this process's listeners after it stops accepting will be reset (set it to 1)");
    }
    auto notify = open_notify_socket();
    if (!notify) {
        refuse(notify.error());
        return;
    }
    const Launch launch = prepare_launch(listener_fd_, notify->second);
    log.server(LogLevel::info, "restart",
               "SIGUSR2: starting " + executable + " to take over" +
                   (listener_fd_ >= 0 ? " the listening socket" : " beside this one (SO_REUSEPORT)"));
    const pid_t child = ::fork();
    if (child < 0) {
        refuse("cannot start a new process: " + errno_text(errno));
        return;
    }
    if (child == 0) exec_successor(listener_fd_, launch);
    if (const std::string why = wait_until_ready(child, notify->first.get()); !why.empty()) {
        refuse("the new process (pid " + std::to_string(child) + ") " + why);
        return;
    }
    successor_.store(child);
    log.server(LogLevel::info, "restart",
               "The new process (pid " + std::to_string(child) +
                   ") is ready: it serves from now on; this one answers what has arrived and stops");
    request_stop(SIGUSR2);
}

// Waits for the child's READY=1 on the notification socket; returns "" once it came, or what
// went wrong (the child is then stopped, or already gone).
std::string RestartOnUsr2::wait_until_ready(pid_t child, int notify_fd) {
    Fd child_exit(static_cast<int>(::syscall(SYS_pidfd_open, child, 0)));
    const auto deadline = Clock::now() + restart_ready_timeout;
    const auto give_up = [&](const std::string& why) {
        ::kill(child, SIGKILL);
        ::waitpid(child, nullptr, 0);
        return why;
    };
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) {
            return give_up("was not ready within " + std::to_string(restart_ready_timeout.count()) + " s: stopped it");
        }
        // Without a pidfd (kernels before 5.3) a dead child is noticed by waitpid every 100 ms.
        pollfd fds[3] = {{notify_fd, POLLIN, 0}, {wake_.get(), POLLIN, 0}, {child_exit.get(), POLLIN, 0}};
        const int ready = ::poll(fds, child_exit.valid() ? 3 : 2, static_cast<int>(std::min<long long>(left, 100)));
        if (ready < 0 && errno != EINTR) return give_up("could not be watched (" + errno_text(errno) + "): stopped it");
        if (fds[1].revents != 0) return give_up("was still starting when this server ended: stopped it");
        if ((fds[0].revents & POLLIN) != 0 && ready_message_from(notify_fd, child)) return {};
        int status = 0;
        const pid_t reaped = ::waitpid(child, &status, WNOHANG);
        if (reaped == child || (reaped < 0 && errno == ECHILD)) {
            // ECHILD: prefork's parent reaped it first; either way it is gone.
            return (reaped == child ? describe_status(status) : std::string("ended")) + " before it was ready";
        }
    }
}

}  // namespace zen
