#include "servers/transport_conversation.hpp"

#include "net/io.hpp"
#include "servers/connection_tracker.hpp"

namespace zen {

namespace {

constexpr auto never = Clock::time_point::max();

}  // namespace

TransportConversation::TransportConversation(const ServerContext& context, Send send)
    : context_(context),
      send_(std::move(send)),
      session_(context.table, context.options.limits),
      pacer_(context.options, Clock::now()),
      last_activity_(Clock::now()) {}

TransportConversation::~TransportConversation() {
    if (counted_) context_.tracker.closed();
}

void TransportConversation::connection_made(loop::Transport& transport) {
    transport_ = &transport;
    intake_.emplace(context_, transport.peer(), transport.loop().now());
    if (!intake_->open(transport.fd())) {
        ended_ = true;
        transport.abort();  // before a byte is read
        return;
    }
    peer_ = intake_->peer();
    context_.tracker.opened();
    counted_ = true;
    const std::size_t high = context_.options.limits.max_pending;
    transport.set_write_buffer_limits(high, high / 4);
    rearm_deadline();
}

void TransportConversation::data_received(std::string_view data) {
    const auto now = transport_->loop().now();
    if (lingering_ || ended_) return;  // discarded: only a clean close is still to come
    last_activity_ = now;
    std::string after_header;
    if (intake_->reading_header()) {
        const ClientIntake::Step step = intake_->feed(data);
        if (step == ClientIntake::Step::close) {
            ended_ = true;
            transport_->abort();
            return;
        }
        if (step == ClientIntake::Step::wait) return;
        peer_ = intake_->peer();
        after_header = intake_->take_remainder();
        data = after_header;
    }
    const auto answers = receive_counted(context_, session_, data);
    pacer_.answered(answers, sent_total_ + session_.pending_output().size(), now);
    pump();
}

void TransportConversation::eof_received() {
    if (lingering_) {
        transport_->abort();  // the client has closed too: nothing left to protect
        return;
    }
    if (ended_) return;
    if (intake_->reading_header()) {
        ended_ = true;
        intake_->header_cut_short();
        transport_->abort();
        return;
    }
    session_.receive_eof();
    pump();
}

void TransportConversation::connection_lost(std::string_view error) {
    transport_->loop().cancel(timer_);
    if (!ended_ && !error.empty()) {
        ended_ = true;
        log_client_error(context_, peer_, error);
    }
}

void TransportConversation::pause_writing() { writing_paused_ = true; }

void TransportConversation::resume_writing() {
    writing_paused_ = false;
    pump();
}

void TransportConversation::pump() {
    if (ended_ || transport_->closed()) return;
    const auto now = transport_->loop().now();
    // Hand answers to the transport while its queue is below the high mark; the rest stays in
    // the session, which stops taking questions at --max-pending. Memory stays bounded by both.
    while (!writing_paused_ && !transport_->closed()) {
        const std::string_view pending = session_.pending_output();
        const std::size_t ready = pacer_.releasable(sent_total_, pending.size(), now);
        if (ready == 0) break;
        const std::size_t chunk = std::min<std::size_t>(ready, 16 * 1024);
        send_(pending.substr(0, chunk));
        session_.consume_output(chunk);
        sent_total_ += chunk;
        last_activity_ = now;
    }
    if (transport_->closed()) return;
    if (session_.done()) {
        end_conversation();
        return;
    }
    if (draining_ && session_.pending_output().empty()) {
        ended_ = true;
        context_.log.connection(LogLevel::info, "closed_on_stop", peer_,
                                "Client socket to " + peer_ + " closed: server stopping");
        close_gracefully(drain_deadline(context_));
        return;
    }
    if (session_.wants_input() && !draining_) {
        transport_->resume_reading();
    } else {
        transport_->pause_reading();
    }
    if (!session_.has_partial_question()) {
        question_deadline_ = never;
    } else if (question_deadline_ == never) {
        question_deadline_ = deadline_after(now, context_.options.question_timeout);
    }
    rearm_deadline();
}

void TransportConversation::end_conversation() {
    ended_ = true;
    log_session_end(context_, peer_, session_);
    if (session_.status() == Session::Status::too_long) {
        const auto now = transport_->loop().now();
        close_gracefully(draining_ ? std::min(drain_deadline(context_), now + close_linger) : now + close_linger);
    } else {
        transport_->close();
    }
}

void TransportConversation::close_gracefully(Clock::time_point limit) {
    // Our answers go first, then our FIN; the client's further bytes are read and dropped
    // (data_received ignores them) until it closes or the limit passes.
    lingering_ = true;
    linger_deadline_ = limit;
    transport_->write_eof();
    transport_->resume_reading();
    rearm_deadline();
}

void TransportConversation::rearm_deadline() {
    Clock::time_point deadline;
    if (lingering_) {
        deadline = linger_deadline_;
    } else if (draining_) {
        deadline = drain_deadline(context_);
    } else if (intake_->reading_header()) {
        deadline = intake_->header_deadline();
    } else {
        const bool waiting = transport_->write_buffer_size() > 0 || !session_.pending_output().empty();
        deadline = std::min({question_deadline_, deadline_after(last_activity_, quiet_limit(context_.options, waiting)),
                             pacer_.next_release()});
    }
    // A timer already due earlier stays: when it fires, nothing is due yet and it is armed again
    // for the real deadline. Re-arming on every read would churn the loop's timer heap.
    if (deadline >= armed_) return;
    transport_->loop().cancel(timer_);
    armed_ = deadline;
    if (deadline != never) timer_ = transport_->loop().call_at(deadline, [this] { on_deadline(); });
}

void TransportConversation::on_deadline() {
    armed_ = never;
    const auto now = Clock::now();
    if (lingering_) {
        if (now >= linger_deadline_) {
            transport_->abort();
            return;
        }
    } else if (draining_ && now >= drain_deadline(context_)) {
        ended_ = true;
        log_client_timeout(context_, peer_, "not reading its answers; closed as the server stops");
        transport_->abort();
        return;
    } else if (!draining_ && intake_->reading_header()) {
        if (now >= intake_->header_deadline()) {
            ended_ = true;
            intake_->header_timed_out();
            transport_->abort();
            return;
        }
        rearm_deadline();
        return;
    } else if (!draining_ && now >= question_deadline_) {
        ended_ = true;
        log_client_timeout(context_, peer_,
                         "question not finished within " + duration_text(context_.options.question_timeout));
        transport_->abort();
        return;
    } else if (!draining_ &&
               now >= deadline_after(last_activity_,
                                     quiet_limit(context_.options, transport_->write_buffer_size() > 0 ||
                                                                       !session_.pending_output().empty()))) {
        ended_ = true;
        log_client_timeout(context_, peer_,
                         transport_->write_buffer_size() > 0
                             ? "not reading its answers for " + duration_text(quiet_limit(context_.options, true))
                             : "idle for " + duration_text(context_.options.idle_timeout));
        transport_->abort();
        return;
    }
    pump();  // --wait answers whose time has come
    if (!transport_->closed()) rearm_deadline();
}

void TransportConversation::drain() {
    if (ended_ || transport_->closed()) return;
    transport_->read_now();  // what the client has already sent is answered
    if (ended_ || transport_->closed()) return;
    draining_ = true;
    pump();
}

}  // namespace zen
