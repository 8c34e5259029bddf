// Socket I/O that reports outcomes as values: EINTR is retried, SIGPIPE is never raised
// (MSG_NOSIGNAL), would-block is an outcome rather than an error.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "base/clock.hpp"
#include "base/result.hpp"
#include "base/text.hpp"
#include "net/fd.hpp"

namespace zen {

enum class IoStatus { ok, eof, would_block, error };

struct IoResult {
    IoStatus status;
    std::size_t bytes = 0;
    int error = 0;  // errno when status is error
};

IoResult receive_some(int fd, char* buffer, std::size_t capacity);
IoResult send_some(int fd, std::string_view data);

enum class WaitOutcome { ready, timed_out, stopped };

// Waits until fd has one of events (POLLIN/POLLOUT), the deadline passes, or stop_fd becomes
// readable (pass -1 for no stop fd). A deadline of time_point::max() waits without limit.
WaitOutcome wait_for(int fd, short events, int stop_fd, TimePoint deadline);

// Blocking send of every byte (on a blocking socket); the error names the cause.
Result<Ok> send_all(int fd, std::string_view data);

// Ends a connection whose last answer must survive (DESIGN §2): shut down our sending side,
// discard whatever the client still sends until it closes or `linger` passes, then close.
// Closing with unread input would send a reset that can destroy the answer in flight.
void close_gracefully(Fd fd, std::chrono::milliseconds linger);

void set_nonblocking(int fd);
void set_blocking(int fd);
void set_no_delay(int fd);

// What every accepted connection of `zen serve` gets (docs/lifecycle.md, "Vanished peers"):
// TCP_NODELAY, always. `keepalive`: after that long without a packet from the peer the kernel
// probes it (SO_KEEPALIVE, TCP_KEEPIDLE; TCP_KEEPINTVL a third of it, at least 1 s; TCP_KEEPCNT
// 3) and ends the connection when the probes go unanswered; zero turns SO_KEEPALIVE off.
// `user_timeout`: TCP_USER_TIMEOUT (RFC 5482), how long sent data may stay unacknowledged before
// the kernel ends the connection; zero leaves the kernel's retransmission limit
// (net.ipv4.tcp_retries2, about 15 minutes).
struct ClientSocketOptions {
    std::chrono::seconds keepalive{0};
    std::chrono::milliseconds user_timeout{0};
    bool operator==(const ClientSocketOptions&) const = default;
};
inline constexpr int keepalive_probes = 3;
std::chrono::seconds keepalive_interval(std::chrono::seconds keepalive);
void set_client_options(int fd, const ClientSocketOptions& options);
// Whether fd has every one of them already (an adopted listener, whose clients inherit what it has).
bool has_client_options(int fd, const ClientSocketOptions& options);

// Which of the kernel's timers ended a connection whose read or send failed with `error`:
// ETIMEDOUT after keepalive probes went unanswered, or after sent data went unacknowledged for
// TCP_USER_TIMEOUT (or the kernel's retransmission limit); read from TCP_INFO (tcpi_probes,
// tcpi_retransmits), which keeps them after the kernel has given up. none for any other error.
enum class PeerSilence : unsigned char { none, probes_unanswered, data_unacknowledged };
PeerSilence peer_silence(int fd, int error);
// The error a socket holds (SO_ERROR, which reading clears), 0 for none.
int pending_socket_error(int fd);

}  // namespace zen
