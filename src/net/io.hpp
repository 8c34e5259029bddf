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

}  // namespace zen
