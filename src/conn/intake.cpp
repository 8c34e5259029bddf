#include "conn/intake.hpp"

#include "conn/client_log.hpp"
#include "conn/connection_tracker.hpp"

namespace zen {

ClientIntake::ClientIntake(const ConnectionContext& context, const SocketAddress& peer, TimePoint now)
    : gate_(context.rules.proxy.enabled ? std::make_unique<ProxyGate>(context.rules.proxy, peer) : nullptr),
      peer_(format_address(peer)),
      reading_header_(gate_ != nullptr && gate_->active()),
      // A direct client's first bytes get the usual idle timeout; a proxy's header its own.
      header_deadline_(!reading_header_ ? never
                       : trusted()      ? deadline_after(now, context.rules.proxy.header_timeout)
                                        : deadline_after(now, context.rules.idle_timeout)) {
    if (!reading_header_) gate_.reset();
}

ClientIntake::Admission ClientIntake::admit(const ConnectionContext& context, const SocketAddress& peer) {
    // A proxy's own address says nothing of its clients: the rules apply once the header names one.
    if (!trusted() && !context.rules.access.empty()) {
        if (const std::string why = refusal(context.rules.access, peer); !why.empty()) {
            log_refused(context, peer_, why, Counter::refused_denied);
            return Admission::refused;
        }
    }
    const int limit = context.rules.max_connections;
    if (limit > 0 && context.tracker.active() >= limit) {
        log_refused(context, peer_, "server busy (--max-connections " + std::to_string(limit) + ")",
                    Counter::refused_busy);
        return Admission::busy;
    }
    if (!reading_header_) log_accepted(context, peer_);
    return Admission::admitted;
}

std::string ClientIntake::take_remainder() {
    if (gate_ == nullptr || reading_header_) return {};  // nothing yet, or nothing any more
    std::string rest = gate_->take_remainder();
    gate_.reset();
    return rest;
}

ClientIntake::Step ClientIntake::feed(const ConnectionContext& context, std::string_view bytes) {
    switch (gate_->feed(bytes)) {
        case ProxyGate::Verdict::wait:
            return Step::wait;
        case ProxyGate::Verdict::refuse:
            log_refused(context, peer_, gate_->reason(),
                        gate_->forged() ? Counter::refused_proxy : Counter::error_invalid_proxy_header);
            return Step::close;
        case ProxyGate::Verdict::admit:
            break;
    }
    reading_header_ = false;
    if (trusted()) {
        const std::string proxy = peer_;
        peer_ = format_address(gate_->client());
        if (!context.rules.access.empty()) {
            if (const std::string why = refusal(context.rules.access, gate_->client()); !why.empty()) {
                log_refused(context, peer_, why, Counter::refused_denied);
                return Step::close;
            }
        }
        log_proxied(context, peer_, proxy);
    }
    log_accepted(context, peer_);
    return Step::converse;
}

void ClientIntake::header_timed_out(const ConnectionContext& context) {
    log_timeout(context, peer_, trusted() ? Timeout::proxy_header : Timeout::idle);
}

}  // namespace zen
