#include "net/io.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace zen {

IoResult receive_some(int fd, char* buffer, std::size_t capacity) {
    for (;;) {
        const ssize_t n = ::recv(fd, buffer, capacity, 0);
        if (n > 0) return {IoStatus::ok, static_cast<std::size_t>(n)};
        if (n == 0) return {IoStatus::eof};
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return {IoStatus::would_block};
        return {IoStatus::error, 0, errno};
    }
}

IoResult send_some(int fd, std::string_view data) {
    for (;;) {
        const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n >= 0) return {IoStatus::ok, static_cast<std::size_t>(n)};
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return {IoStatus::would_block};
        return {IoStatus::error, 0, errno};
    }
}

WaitOutcome wait_for(int fd, short events, int stop_fd, TimePoint deadline) {
    pollfd fds[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
    const nfds_t count = stop_fd >= 0 ? 2 : 1;
    for (;;) {
        int timeout_ms = -1;
        if (deadline != never) {
            const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
            if (left.count() <= 0) return WaitOutcome::timed_out;
            timeout_ms = left.count() > 1'000'000'000 ? 1'000'000'000 : static_cast<int>(left.count());
        }
        const int n = ::poll(fds, count, timeout_ms);
        if (n < 0) {
            if (errno == EINTR) continue;
            return WaitOutcome::ready;  // let the caller's next call report the error
        }
        if (count == 2 && fds[1].revents != 0) return WaitOutcome::stopped;
        if (fds[0].revents != 0) return WaitOutcome::ready;
    }
}

Result<Ok> send_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const IoResult sent = send_some(fd, data);
        if (sent.status == IoStatus::error) return Error{errno_text(sent.error)};
        if (sent.status == IoStatus::would_block) return Error{"timed out sending"};
        data.remove_prefix(sent.bytes);
    }
    return Ok{};
}

void close_gracefully(Fd fd, std::chrono::milliseconds linger) {
    ::shutdown(fd.get(), SHUT_WR);
    const auto deadline = Clock::now() + linger;
    char discard[4096];
    for (;;) {
        const IoResult got = receive_some(fd.get(), discard, sizeof discard);
        if (got.status == IoStatus::ok) continue;
        if (got.status != IoStatus::would_block) break;
        if (wait_for(fd.get(), POLLIN, -1, deadline) != WaitOutcome::ready) break;
    }
}

void set_nonblocking(int fd) {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0 && (flags & O_NONBLOCK) == 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

void set_blocking(int fd) {
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0 && (flags & O_NONBLOCK) != 0) ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
}

void set_no_delay(int fd) {
    const int on = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

}  // namespace zen
