// What a connection is told when it is made: the rules of its life (the per-connection options of
// `zen serve`) and the server-wide things it reports to. Nothing here is a global: a test builds
// its own context around a fake clock's times.
#pragma once

#include <chrono>

#include "base/log.hpp"
#include "base/trace.hpp"
#include "net/access.hpp"
#include "net/proxy_protocol.hpp"
#include "proto/aphorisms.hpp"
#include "proto/session.hpp"

namespace zen {

class ConnectionTracker;

struct ConnectionRules {
    SessionLimits limits;
    std::chrono::milliseconds idle_timeout{300'000};     // zero: never
    std::chrono::milliseconds question_timeout{30'000};  // zero: never
    std::chrono::milliseconds send_timeout{60'000};      // answers waiting, none taken; zero: never
    int max_connections = 0;             // 0: no limit but the fd limit
    std::chrono::milliseconds delay{0};  // per answer, blocking the answering thread (the book's sleep)
    std::chrono::milliseconds wait{0};   // per answer, without blocking where the model allows
    AccessRules access;
    ProxyPolicy proxy;
};

// How long a closing connection keeps discarding input so its last answer survives (DESIGN §2).
inline constexpr std::chrono::milliseconds close_linger{1000};

struct ConnectionContext {
    const ConnectionRules& rules;
    LiveTable& table;  // read at each question; replaced whole on SIGHUP
    Log& log;
    ConnectionTracker& tracker;  // shared by every thread and worker process of the server
    TraceRecorder* trace = nullptr;  // --trace: what each connection did, on one clock; else null
};

}  // namespace zen
