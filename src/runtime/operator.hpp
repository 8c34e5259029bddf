// The signals an operator sends a running server without stopping it: SIGUSR1 logs the
// counters, SIGHUP reloads (--log-file reopened, --aphorisms re-read).
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <thread>

#include "runtime/options.hpp"

namespace zen {

// One line with every counter and the open connections: "Counters (SIGUSR1): accepted 3, ...".
void log_counters(const ServerContext& context, std::string_view when);

// SIGHUP: opens --log-file again (after logrotate renamed it) and re-reads --aphorisms with the
// start-up checks, publishing the new table for each conversation's next question; a table that
// fails them leaves the old one in use. Logs one line saying what was done or what failed (with
// the file and line), prefixed by `who` (prefork's workers name themselves). Never stops anything.
void reload(const ServerContext& context, std::string_view who = {});

// How many reloads this process has done: prefork's parent passes each one on to its workers.
std::uint64_t reloads_done();

// SIGUSR1 and SIGHUP, handled on a thread of its own for as long as it lives.
// Construct it before any other thread: it blocks both signals in the constructing thread, and so
// in every thread (and prefork worker) started after, so none of them is ever interrupted or
// killed by one. fork() waits while it works, and the constructor returns only once the thread
// has started: a fork() during a thread's start-up can hand the child an allocator lock no one
// will release (ASan's allocator is not fork-safe).
class OperatorSignals {
public:
    explicit OperatorSignals(const ServerContext& context, std::string who = {});
    ~OperatorSignals();
    OperatorSignals(const OperatorSignals&) = delete;
    OperatorSignals& operator=(const OperatorSignals&) = delete;

private:
    const ServerContext& context_;
    std::string who_;  // prefixes the reload line
    std::atomic<bool> stopping_{false};
    std::atomic<bool> started_{false};
    std::thread thread_;
};

}  // namespace zen
