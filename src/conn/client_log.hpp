// The book's log lines about one client, and the counter each of them adds to. Every sentence the
// log prints about a connection stands here and nowhere else; src/conn/connection.cpp decides
// which one a connection's end gets.
#pragma once

#include <string>
#include <string_view>

#include "conn/connection_tracker.hpp"
#include "conn/rules.hpp"
#include "proto/session.hpp"

namespace zen {

// "Accepted connection from ('127.0.0.1', 41285)"; counts it as accepted.
void log_accepted(const ConnectionContext& context, const std::string& peer);
// "Client ... refused: why", counted under `counter` (refused_busy, refused_denied, refused_proxy,
// error_invalid_proxy_header).
void log_refused(const ConnectionContext& context, const std::string& peer, std::string_view why, Counter counter);
// "Client <real> comes through proxy <proxy>".
void log_proxied(const ConnectionContext& context, const std::string& peer, const std::string& proxy);
// "Client socket to ... closed before its PROXY header was complete"; with no byte at all, a
// health check.
void log_header_cut_short(const ConnectionContext& context, const std::string& peer, bool sent_anything);
// The two below return the log's words for the end (the book's "has closed", the stop's own),
// static text: a traced connection's span closes with them.
// How a conversation ended by itself: "has closed", "sent b'...' but then closed", or "error:
// question too long (over N bytes)" (a protocol error). A close before any byte came is a load
// balancer's health check: logged as the book's close and counted as a health check.
const char* log_session_end(const ConnectionContext& context, const std::string& peer, const Session& session,
                            bool sent_anything);
// An I/O error ended it ("error: [Errno 104] Connection reset by peer"): counted as a reset. A
// client that sent nothing and reset is a health check (haproxy closes its checks so), no error.
void log_client_error(const ConnectionContext& context, const std::string& peer, std::string_view error,
                      bool sent_anything);

// The timeouts, each counted as one.
enum class Timeout {
    proxy_header,    // a trusted proxy sent no whole PROXY header in time
    question,        // --question-timeout: a started question not finished
    idle,            // --idle-timeout: silence
    send,            // --send-timeout: answers waiting, none taken
    drain,           // the server stopped and the drain time ran out with answers still waiting
    // The kernel's, not zen's (ETIMEDOUT on the socket; docs/lifecycle.md, "Vanished peers"):
    keepalive,       // --tcp-keepalive: probes of a silent peer went unanswered
    unacknowledged,  // TCP_USER_TIMEOUT (--send-timeout): an answer sent was never acknowledged
};
void log_timeout(const ConnectionContext& context, const std::string& peer, Timeout timeout);
// The log's words for a timeout ("idle for 300 s"), also a traced connection's close reason.
std::string timeout_text(const ConnectionRules& rules, Timeout timeout);

// The drain closed a conversation that had every answer it asked for ("... closed: server
// stopping", logged as the book would).
const char* log_closed_on_stop(const ConnectionContext& context, const std::string& peer);

}  // namespace zen
