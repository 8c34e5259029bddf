// SIGINT/SIGTERM as a file descriptor: the handler writes to a pipe that nobody drains, so the
// read end stays readable and every thread that polls it sees the stop. SIGPIPE is ignored.
#pragma once

#include "base/result.hpp"

namespace zen {

// Once per process, before any thread starts.
Result<Ok> install_stop_signals();

// The read end to poll for POLLIN; -1 before install_stop_signals().
int stop_fd();
bool stop_requested();
// The signal that asked for the stop (SIGINT or SIGTERM), 0 if none yet.
int stop_signal_number();

}  // namespace zen
