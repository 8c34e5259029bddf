// What a connection is told when it is made: the rules of its life (the per-connection options of
// `zen serve`) and the server-wide things it reports to. Nothing here is a global: a test builds
// its own context around a fake clock's times.
#pragma once

#include <algorithm>
#include <chrono>

#include "base/log.hpp"
#include "base/trace.hpp"
#include "net/access.hpp"
#include "net/io.hpp"
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
    // The kernel's keepalive probes of a silent peer (whole seconds, from 1 to 32767; zero: off).
    std::chrono::seconds tcp_keepalive{300};
    int max_connections = 0;             // 0: no limit but the fd limit
    std::chrono::milliseconds delay{0};  // per answer, blocking the answering thread (the book's sleep)
    std::chrono::milliseconds wait{0};   // per answer, without blocking where the model allows
    AccessRules access;
    ProxyPolicy proxy;
};

// How long answers may wait with none taken: --send-timeout, or --idle-timeout if that is the
// shorter (or --send-timeout is 0); zero: for ever.
inline std::chrono::milliseconds send_limit(const ConnectionRules& rules) {
    if (rules.send_timeout.count() == 0) return rules.idle_timeout;
    if (rules.idle_timeout.count() == 0) return rules.send_timeout;
    return std::min(rules.idle_timeout, rules.send_timeout);
}

// The kernel's part of the rules, set on each accepted socket: keepalive probes after
// --tcp-keepalive, and TCP_USER_TIMEOUT at the send limit, so that an answer the peer never
// acknowledges ends the connection as one it does not take would.
inline ClientSocketOptions client_socket_options(const ConnectionRules& rules) {
    return {rules.tcp_keepalive, send_limit(rules)};
}

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
