// What every architecture is given: the options of `zen serve` and the context a server runs
// with (the registry of --arch names is src/servers/registry.hpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "base/clock.hpp"
#include "base/log.hpp"
#include "conn/rules.hpp"

namespace zen {

// The connection rules (conn/rules.hpp), plus what the server itself needs.
struct ServeOptions : ConnectionRules {
    std::string host = "127.0.0.1";
    std::uint16_t port = 1060;
    std::string arch = "single";
    int backlog = 128;
    std::string aphorisms_path;  // empty: the book's table
    int workers = 0;  // threaded, prefork (4), reuseport (one per core); 0: that default
    std::chrono::milliseconds exit_idle{0};         // zero: never exit for want of clients
    std::chrono::milliseconds drain_timeout{5000};  // after SIGTERM, before stopping hard
    bool exit_idle_given = false;  // --exit-idle was on the command line (else --inetd-wait uses 8 s)
    bool inetd = false;       // fd 0 is one connected client: serve it and exit
    bool inetd_wait = false;  // fd 0 is the listening socket
    std::string user;  // drop to this user once the socket is ready
    std::string metrics;  // --metrics HOST:PORT; empty: no endpoint
    bool no_multishot = false;  // uring: one-shot accepts and receives, as kernels before 5.19/6.0 must
    std::string trace;          // --trace FILE: written at exit and on SIGUSR1; empty: no recording
    std::size_t trace_max_events = TraceRecorder::default_max_events;
    LogOptions log;
};

// A connection's context (rules, table, log, tracker), plus what the server itself needs.
struct ServerContext : ConnectionContext {
    const ServeOptions& options;
    bool decides_idle_exit = true;  // false in prefork workers: their parent decides
};

}  // namespace zen
