// Process signals as file descriptors. A handler writes to a pipe that nobody drains, so its read
// end stays readable and every thread that polls it sees the request. Two requests exist:
//   stop (SIGINT, SIGTERM): stop accepting, answer what has arrived, close within the drain time;
//   quit (SIGQUIT, or --exit-idle): stop accepting, let open conversations finish normally.
// SIGPIPE is ignored.
#pragma once

#include <signal.h>

#include <chrono>
#include <initializer_list>

#include "base/clock.hpp"
#include "base/result.hpp"

namespace zen {

// Once per process, before any thread starts.
Result<Ok> install_stop_signals();
// In a forked worker: fresh pipes, so a signal to the worker does not reach its parent.
Result<Ok> reinstall_stop_signals_in_child();

// Read ends to poll for POLLIN; -1 before install_stop_signals().
int stop_fd();
int quit_fd();

bool stop_requested();
// The signal that asked for the stop (SIGINT, SIGTERM, or SIGUSR2 after a hand-over), 0 if none yet.
int stop_signal_number();
// When the first stop request arrived (steady clock); meaningful once stop_requested().
TimePoint stop_time();

// Asks this process to stop as SIGTERM would, naming signal_number as the cause (SIGUSR2 after a
// hand-over to a new process); true for the first stop request only.
bool request_stop(int signal_number);

bool quit_requested();
// True when the quit came from SIGQUIT (not from request_quit()).
bool quit_signal_received();
// Asks this process to quit as SIGQUIT would; true for the first caller only.
bool request_quit();

// Blocks or unblocks SIGINT, SIGTERM and SIGQUIT in this thread (around fork()).
void block_stop_signals(bool blocked);

// The set holding exactly these signals (for pthread_sigmask and sigtimedwait).
sigset_t signal_set(std::initializer_list<int> signal_numbers);

}  // namespace zen
