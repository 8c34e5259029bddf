#include "net/signals.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "net/io.hpp"

namespace zen {

namespace {

int pipe_read = -1;
int pipe_write = -1;
std::atomic<int> received_signal{0};

extern "C" void on_stop_signal(int signal_number) {
    const int saved_errno = errno;
    received_signal.store(signal_number, std::memory_order_relaxed);
    const char byte = 1;
    [[maybe_unused]] const ssize_t n = ::write(pipe_write, &byte, 1);  // full pipe: already signalled
    errno = saved_errno;
}

}  // namespace

Result<Ok> install_stop_signals() {
    if (pipe_read >= 0) return Ok{};
    int fds[2];
    if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return Error{"cannot create signal pipe: " + errno_text(errno)};
    pipe_read = fds[0];
    pipe_write = fds[1];

    struct sigaction ignore {};
    ignore.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ignore, nullptr);

    struct sigaction stop {};
    stop.sa_handler = on_stop_signal;
    sigemptyset(&stop.sa_mask);
    stop.sa_flags = SA_RESTART;
    ::sigaction(SIGINT, &stop, nullptr);
    ::sigaction(SIGTERM, &stop, nullptr);
    return Ok{};
}

int stop_fd() { return pipe_read; }

bool stop_requested() { return received_signal.load(std::memory_order_relaxed) != 0; }

int stop_signal_number() { return received_signal.load(std::memory_order_relaxed); }

}  // namespace zen
