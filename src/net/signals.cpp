#include "net/signals.hpp"

#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>

#include "net/io.hpp"

namespace zen {

namespace {

struct SignalPipe {
    int read = -1;
    int write = -1;
};

SignalPipe stop_pipe;
SignalPipe quit_pipe;
std::atomic<int> stop_signal{0};
std::atomic<std::int64_t> stop_ns{0};
std::atomic<bool> quit_flag{false};
std::atomic<bool> quit_signalled{false};  // SIGQUIT itself, not request_quit()

std::int64_t monotonic_ns() {
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);  // the clock behind std::chrono::steady_clock
    return std::int64_t{now.tv_sec} * 1'000'000'000 + now.tv_nsec;
}

void poke(int fd) {
    const char byte = 1;
    [[maybe_unused]] const ssize_t n = ::write(fd, &byte, 1);  // a full pipe is already readable
}

// Async-signal-safe: called from the handler.
bool begin_stop(int signal_number) {
    // The time first: a thread that sees stop_requested() must also see when it began.
    std::int64_t unset = 0;
    stop_ns.compare_exchange_strong(unset, monotonic_ns());
    int none = 0;
    const bool first = stop_signal.compare_exchange_strong(none, signal_number);
    poke(stop_pipe.write);
    return first;
}

extern "C" void on_signal(int signal_number) {
    const int saved_errno = errno;
    if (signal_number == SIGQUIT) {
        quit_signalled.store(true);
        quit_flag.store(true);
        poke(quit_pipe.write);
    } else {
        begin_stop(signal_number);
    }
    errno = saved_errno;
}

Result<Ok> open_pipe(SignalPipe& pipe) {
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return Error{"cannot create signal pipe: " + errno_text(errno)};
    pipe.read = fds[0];
    pipe.write = fds[1];
    return Ok{};
}

void close_pipe(SignalPipe& pipe) {
    if (pipe.read >= 0) ::close(pipe.read);
    if (pipe.write >= 0) ::close(pipe.write);
    pipe = {};
}

void set_handlers() {
    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ignore, nullptr);

    struct sigaction handler {};
    handler.sa_handler = on_signal;
    sigemptyset(&handler.sa_mask);
    handler.sa_flags = SA_RESTART;
    for (const int signal_number : {SIGINT, SIGTERM, SIGQUIT}) ::sigaction(signal_number, &handler, nullptr);
}

}  // namespace

Result<Ok> install_stop_signals() {
    if (stop_pipe.read >= 0) return Ok{};
    if (auto opened = open_pipe(stop_pipe); !opened) return opened;
    if (auto opened = open_pipe(quit_pipe); !opened) return opened;
    set_handlers();
    return Ok{};
}

Result<Ok> reinstall_stop_signals_in_child() {
    close_pipe(stop_pipe);
    close_pipe(quit_pipe);
    stop_signal.store(0);
    stop_ns.store(0);
    quit_flag.store(false);
    quit_signalled.store(false);
    return install_stop_signals();
}

int stop_fd() { return stop_pipe.read; }
int quit_fd() { return quit_pipe.read; }

bool stop_requested() { return stop_signal.load() != 0; }
int stop_signal_number() { return stop_signal.load(); }

TimePoint stop_time() {
    return TimePoint(std::chrono::nanoseconds(stop_ns.load()));
}

bool quit_requested() { return quit_flag.load(); }
bool quit_signal_received() { return quit_signalled.load(); }

bool request_stop(int signal_number) { return begin_stop(signal_number); }

bool request_quit() {
    if (quit_flag.exchange(true)) return false;
    poke(quit_pipe.write);
    return true;
}

void block_stop_signals(bool blocked) {
    const sigset_t set = signal_set({SIGINT, SIGTERM, SIGQUIT});
    ::pthread_sigmask(blocked ? SIG_BLOCK : SIG_UNBLOCK, &set, nullptr);
}

sigset_t signal_set(std::initializer_list<int> signal_numbers) {
    sigset_t set;
    sigemptyset(&set);
    for (const int signal_number : signal_numbers) sigaddset(&set, signal_number);
    return set;
}

}  // namespace zen
