#include "net/io.hpp"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>

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

namespace {

int int_option(int fd, int level, int name) {
    int value = 0;
    socklen_t length = sizeof value;
    if (::getsockopt(fd, level, name, &value, &length) != 0) return -1;
    return value;
}

void set_int_option(int fd, int level, int name, int value) { ::setsockopt(fd, level, name, &value, sizeof value); }

int user_timeout_ms(const ClientSocketOptions& options) {
    constexpr long long most = std::numeric_limits<int>::max();  // about 24 days
    return static_cast<int>(std::min<long long>(options.user_timeout.count(), most));
}

}  // namespace

std::chrono::seconds keepalive_interval(std::chrono::seconds keepalive) {
    return std::max(std::chrono::seconds(1), keepalive / 3);
}

void set_client_options(int fd, const ClientSocketOptions& options) {
    set_no_delay(fd);
    const bool keepalive = options.keepalive.count() > 0;
    set_int_option(fd, SOL_SOCKET, SO_KEEPALIVE, keepalive ? 1 : 0);
    if (keepalive) {
        set_int_option(fd, IPPROTO_TCP, TCP_KEEPIDLE, static_cast<int>(options.keepalive.count()));
        set_int_option(fd, IPPROTO_TCP, TCP_KEEPINTVL, static_cast<int>(keepalive_interval(options.keepalive).count()));
        set_int_option(fd, IPPROTO_TCP, TCP_KEEPCNT, keepalive_probes);
    }
    set_int_option(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, user_timeout_ms(options));
}

bool has_client_options(int fd, const ClientSocketOptions& options) {
    if (int_option(fd, IPPROTO_TCP, TCP_NODELAY) <= 0) return false;
    if (int_option(fd, IPPROTO_TCP, TCP_USER_TIMEOUT) != user_timeout_ms(options)) return false;
    const bool keepalive = options.keepalive.count() > 0;
    if ((int_option(fd, SOL_SOCKET, SO_KEEPALIVE) > 0) != keepalive) return false;
    if (!keepalive) return true;
    return int_option(fd, IPPROTO_TCP, TCP_KEEPIDLE) == options.keepalive.count() &&
           int_option(fd, IPPROTO_TCP, TCP_KEEPINTVL) == keepalive_interval(options.keepalive).count() &&
           int_option(fd, IPPROTO_TCP, TCP_KEEPCNT) == keepalive_probes;
}

int pending_socket_error(int fd) { return std::max(0, int_option(fd, SOL_SOCKET, SO_ERROR)); }

PeerSilence peer_silence(int fd, int error) {
    if (error != ETIMEDOUT) return PeerSilence::none;
    tcp_info info{};
    socklen_t length = sizeof info;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) != 0) return PeerSilence::none;
    if (info.tcpi_retransmits > 0) return PeerSilence::data_unacknowledged;
    if (info.tcpi_probes > 0) return PeerSilence::probes_unanswered;
    return PeerSilence::none;
}

}  // namespace zen
