#include "conn/client_log.hpp"

#include "proto/bytes_repr.hpp"

namespace zen {

namespace {

void warn(const ConnectionContext& context, const std::string& peer, std::string_view what) {
    context.log.connection(LogLevel::warning, "client_error", peer,
                           [&] { return "Client " + peer + " error: " + std::string(what); });
}

}  // namespace

void log_accepted(const ConnectionContext& context, const std::string& peer) {
    context.tracker.count(Counter::accepted);
    context.log.connection(LogLevel::info, "accepted", peer, [&] { return "Accepted connection from " + peer; });
}

void log_refused(const ConnectionContext& context, const std::string& peer, std::string_view why, Counter counter) {
    context.tracker.count(counter);
    if (context.trace != nullptr) context.trace->instant("refused", 0, "why", why);
    context.log.connection(LogLevel::warning, "refused", peer,
                           [&] { return "Client " + peer + " refused: " + std::string(why); });
}

void log_proxied(const ConnectionContext& context, const std::string& peer, const std::string& proxy) {
    context.log.connection(LogLevel::info, "proxied", peer,
                           [&] { return "Client " + peer + " comes through proxy " + proxy; });
}

void log_header_cut_short(const ConnectionContext& context, const std::string& peer, bool sent_anything) {
    if (!sent_anything) context.tracker.count(Counter::health_checks);
    context.log.connection(LogLevel::info, "closed", peer,
                           [&] { return "Client socket to " + peer + " closed before its PROXY header was complete"; });
}

const char* log_session_end(const ConnectionContext& context, const std::string& peer, const Session& session,
                            bool sent_anything) {
    switch (session.status()) {
        case Session::Status::open:
        case Session::Status::finished: {
            static constexpr const char* words = "has closed";
            if (!sent_anything) context.tracker.count(Counter::health_checks);
            context.log.connection(LogLevel::info, "closed", peer, [&] { return "Client socket to " + peer + " " + words; });
            return words;
        }
        case Session::Status::partial_at_eof:
            context.log.connection(LogLevel::info, "closed_mid_question", peer, [&] {
                return "Client " + peer + " sent " + bytes_repr(session.unanswered_bytes()) + " but then closed";
            });
            return "sent part of a question but then closed";
        case Session::Status::too_long:
            context.tracker.count(Counter::error_question_too_long);
            warn(context, peer,
                 "question too long (over " + std::to_string(context.rules.limits.max_question) + " bytes)");
            return "error: question too long";
    }
    return "closed";
}

void log_client_error(const ConnectionContext& context, const std::string& peer, std::string_view error,
                      bool sent_anything) {
    if (!sent_anything) {
        context.tracker.count(Counter::health_checks);
        context.log.connection(LogLevel::info, "closed", peer, [&] {
            return "Client socket to " + peer + " has closed (" + std::string(error) + ", nothing sent)";
        });
        return;
    }
    context.tracker.count(Counter::resets);
    warn(context, peer, error);
}

std::string timeout_text(const ConnectionRules& rules, Timeout timeout) {
    switch (timeout) {
        case Timeout::proxy_header:
            return "no PROXY header within " + duration_text(rules.proxy.header_timeout);
        case Timeout::question:
            return "question not finished within " + duration_text(rules.question_timeout);
        case Timeout::idle:
            return "idle for " + duration_text(rules.idle_timeout);
        case Timeout::send:
            return "not reading its answers for " + duration_text(send_limit(rules));
        case Timeout::drain:
            return "not reading its answers; closed as the server stops";
        case Timeout::keepalive:
            return "vanished: no reply to keepalive probes (--tcp-keepalive " + duration_text(rules.tcp_keepalive) + ")";
        case Timeout::unacknowledged:
            return "vanished: an answer unacknowledged for " +
                   (send_limit(rules).count() > 0 ? duration_text(send_limit(rules)) + " (--send-timeout)"
                                                  : std::string("the kernel's retransmissions"));
    }
    return {};
}

void log_timeout(const ConnectionContext& context, const std::string& peer, Timeout timeout) {
    const ConnectionRules& rules = context.rules;
    switch (timeout) {
        case Timeout::proxy_header:
            context.tracker.count(Counter::timeout_proxy_header);
            context.log.connection(LogLevel::warning, "refused", peer,
                                   [&] { return "Client " + peer + " refused: " + timeout_text(rules, timeout); });
            return;
        case Timeout::question:
            context.tracker.count(Counter::timeout_question);
            break;
        case Timeout::idle:
            context.tracker.count(Counter::timeout_idle);
            break;
        case Timeout::send:
            context.tracker.count(Counter::timeout_send);
            break;
        case Timeout::drain:
            context.tracker.count(Counter::timeout_drain);
            break;
        case Timeout::keepalive:
            context.tracker.count(Counter::timeout_keepalive);
            break;
        case Timeout::unacknowledged:
            context.tracker.count(Counter::timeout_unacknowledged);
            break;
    }
    warn(context, peer, timeout_text(rules, timeout));
}

const char* log_closed_on_stop(const ConnectionContext& context, const std::string& peer) {
    static constexpr const char* words = "closed: server stopping";
    context.log.connection(LogLevel::info, "closed_on_stop", peer, [&] { return "Client socket to " + peer + " " + words; });
    return words;
}

}  // namespace zen
