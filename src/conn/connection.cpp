#include "conn/connection.hpp"

#include <algorithm>

#include "conn/client_log.hpp"
#include "conn/connection_tracker.hpp"

namespace zen {

namespace {

// How long a connection may go without progress: --idle-timeout, or, while answers wait for the
// client to take them, --send-timeout if that is shorter. Zero: no limit.
std::chrono::milliseconds quiet_limit(const ConnectionRules& rules, bool answers_waiting) {
    if (!answers_waiting || rules.send_timeout.count() == 0) return rules.idle_timeout;
    if (rules.idle_timeout.count() == 0) return rules.send_timeout;
    return std::min(rules.idle_timeout, rules.send_timeout);
}

}  // namespace

Connection::Connection(const ConnectionContext& context, const SocketAddress& peer, TimePoint now)
    : context_(context),
      intake_(context, peer, now),
      session_(context.table, context.rules.limits),
      pacer_(context.rules, now),
      last_seen_(now),
      last_activity_(now) {
    switch (intake_.admit(context, peer)) {
        case ClientIntake::Admission::refused:
            end(Fate::drop);  // before a byte is read
            return;
        case ClientIntake::Admission::busy:
            phase_ = Phase::turning_away;
            linger_until_ = now + close_linger;  // the busy answer must leave by then
            deadline_ = linger_until_;
            return;
        case ClientIntake::Admission::admitted:
            break;
    }
    context_.tracker.opened();
    counted_open_ = true;
    phase_ = intake_.reading_header() ? Phase::header : Phase::conversing;
    if (context_.trace != nullptr) {
        traced_ = std::make_unique<Traced>();
        traced_->id = context_.trace->next_id();
        if (phase_ == Phase::conversing) open_span();
    }
    deadline_ = next_deadline();
}

Connection::~Connection() {
    close_span({});  // a lingering connection's, with the reason it began lingering for
    if (counted_draining_) context_.tracker.draining(-1);
    if (counted_open_) context_.tracker.closed(last_seen_);
}

void Connection::close_span(std::string_view reason) {
    if (!traced_ || !traced_->span_open) return;
    traced_->span_open = false;
    if (reason.empty()) reason = traced_->close_reason != nullptr ? traced_->close_reason : "closed";
    context_.trace->end_async("connection", "connection", traced_->id, "reason", reason);
}

void Connection::open_span() {
    traced_->span_open = true;
    context_.trace->begin_async("connection", "connection", traced_->id, "peer", intake_.peer());
}

void Connection::timed_out(Timeout timeout) {
    log_timeout(context_, intake_.peer(), timeout);
    if (!traced_) {
        end(Fate::drop);
        return;
    }
    const std::string words = timeout_text(context_.rules, timeout);
    context_.trace->instant("timeout", traced_->id, "timeout", words);
    end(Fate::drop, words);
}

// --- what happened --------------------------------------------------------------------------

void Connection::received(std::string_view bytes, TimePoint now) {
    const Recompute recompute(*this);
    last_seen_ = now;
    received_total_ += bytes.size();
    context_.tracker.count(Counter::bytes_received, bytes.size());
    if (phase_ == Phase::header) {
        last_activity_ = now;
        switch (intake_.feed(context_, bytes)) {
            case ClientIntake::Step::wait:
                return;
            case ClientIntake::Step::close:
                end(Fate::drop);
                return;
            case ClientIntake::Step::converse:
                break;
        }
        phase_ = Phase::conversing;
        if (traced_) open_span();
        const std::string after_header = intake_.take_remainder();
        converse(after_header, false, now);
        return;
    }
    // Lingering or turning away, what the client sends is read only to be dropped.
    if (phase_ == Phase::conversing) converse(bytes, false, now);
}

void Connection::received_unframed(std::string_view bytes, TimePoint now) {
    const Recompute recompute(*this);
    if (phase_ != Phase::conversing) {
        received(bytes, now);  // a PROXY header is framed by its own rules
        return;
    }
    last_seen_ = now;
    received_total_ += bytes.size();
    context_.tracker.count(Counter::bytes_received, bytes.size());
    converse(bytes, true, now);
}

void Connection::converse(std::string_view bytes, bool unframed, TimePoint now) {
    const std::uint64_t answered = session_.answered();
    conversed_ += bytes.size();
    if (unframed) {
        session_.receive_unframed(bytes);
    } else {
        session_.receive(bytes);
    }
    // Bytes that answer nothing and start no question (whitespace between questions) are
    // silence: a space every few seconds must not hold a connection open for ever.
    if (session_.answered() != answered || session_.has_partial_question() || session_.status() != Session::Status::open)
        last_activity_ = now;
    settle(now);
}

void Connection::received_eof(TimePoint now) {
    const Recompute recompute(*this);
    last_seen_ = now;
    peer_eof_ = true;
    switch (phase_) {
        case Phase::header:
            log_header_cut_short(context_, intake_.peer(), received_total_ > 0);
            end(Fate::drop);  // no span yet: it opens once the header is read
            return;
        case Phase::conversing:
            session_.receive_eof();
            settle(now);
            return;
        case Phase::lingering:
            end(Fate::close);  // the client has closed too: nothing is left to protect
            return;
        case Phase::turning_away:
        case Phase::over:
            return;
    }
}

void Connection::nothing_to_read(TimePoint now) {
    const Recompute recompute(*this);
    last_seen_ = now;
    if (!stopping() || drained_) return;
    drained_ = true;
    if (phase_ == Phase::header) {
        end(Fate::drop);  // no question can have arrived before the header
        return;
    }
    settle(now);
}

void Connection::sent(std::size_t n, TimePoint now) {
    const Recompute recompute(*this);
    last_seen_ = now;
    context_.tracker.count(Counter::bytes_sent, n);
    if (phase_ == Phase::turning_away) {
        busy_sent_ += n;
        if (busy_sent_ >= server_busy_answer.size()) linger(now, now + close_linger, nullptr);  // turned away: no span
        return;
    }
    if (phase_ != Phase::conversing || n == 0) return;
    session_.consume_output(n);
    sent_total_ += n;
    last_activity_ = now;
    answers_sent(now);
    settle(now);
}

void Connection::failed(std::string_view error, TimePoint now, PeerSilence silence) {
    const Recompute recompute(*this);
    last_seen_ = now;
    if (phase_ == Phase::over) return;
    if (now >= deadline()) {
        // The driver may have cut the socket to enforce a deadline: the deadline is the reason.
        tick(now);
        if (phase_ == Phase::over) return;
    }
    if (silence != PeerSilence::none && (phase_ == Phase::header || phase_ == Phase::conversing)) {
        // Probes while answers still wait to go are zero-window probes: the peer took none of
        // its answers for TCP_USER_TIMEOUT, the send limit, whether it is still there or not,
        // so the kernel ended it by zen's own rule, the send timeout.
        Timeout timeout = Timeout::unacknowledged;
        if (silence == PeerSilence::probes_unanswered) timeout = answers_waiting() ? Timeout::send : Timeout::keepalive;
        timed_out(timeout);
        return;
    }
    if (phase_ == Phase::header || phase_ == Phase::conversing) {
        const bool sent_anything = phase_ == Phase::header ? received_total_ > 0 : conversed_ > 0;
        log_client_error(context_, intake_.peer(), error, sent_anything);
        if (traced_) context_.trace->instant("error", traced_->id, "error", error);
        end(Fate::drop, error);
        return;
    }
    end(Fate::drop);  // lingering or turning away, its end is logged already
}

void Connection::stop(TimePoint now, TimePoint drain_deadline) {
    const Recompute recompute(*this);
    last_seen_ = now;
    if (stopping() || phase_ == Phase::over) return;
    stop_deadline_ = drain_deadline;
    if (traced_) context_.trace->instant("drain", traced_->id);
    if (counted_open_) {
        counted_draining_ = true;
        context_.tracker.draining(+1);
    }
    linger_until_ = std::min(linger_until_, drain_deadline);
    settle(now);
}

void Connection::tick(TimePoint now) {
    const Recompute recompute(*this);
    last_seen_ = now;
    switch (phase_) {
        case Phase::over:
            return;
        case Phase::lingering:
            if (now >= linger_until_) end(Fate::close);
            return;
        case Phase::turning_away:
            if (now >= linger_until_) end(Fate::drop);
            return;
        case Phase::header:
            if (stopping() && now >= stop_deadline_) {
                end(Fate::drop);  // no question can have arrived before the header
            } else if (now >= intake_.header_deadline()) {
                intake_.header_timed_out(context_);
                end(Fate::drop);
            }
            return;
        case Phase::conversing:
            break;
    }
    if (stopping()) {
        if (now >= stop_deadline_) {
            timed_out(Timeout::drain);
            return;
        }
    } else if (now >= question_deadline_) {
        timed_out(Timeout::question);
        return;
    } else if (now >= quiet_deadline()) {
        timed_out(answers_waiting() ? Timeout::send : Timeout::idle);
        return;
    }
    settle(now);  // --wait answers whose time has come
}

// --- the rules ------------------------------------------------------------------------------

void Connection::settle(TimePoint now) {
    if (phase_ != Phase::conversing) return;
    // Every answer is counted once, whenever it is made: on a read, or as output drains and
    // questions held back by backpressure are answered.
    if (const std::uint64_t answered = session_.answered(); answered > answers_counted_) {
        const std::uint64_t answers = answered - answers_counted_;
        answers_counted_ = answered;
        context_.tracker.count(Counter::answered, answers);
        // Traced from before --delay's sleep: the answer's time includes its blocking work.
        const TimePoint traced = traced_ ? TraceRecorder::now() : TimePoint{};
        pacer_.answered(answers, sent_total_ + session_.pending_output().size(), now);
        answers_made(answers, sent_total_ + session_.pending_output().size(), now, traced);
    }
    if (traced_) {
        const bool held = session_.status() == Session::Status::open && !peer_eof_ && !session_.wants_input();
        if (held != traced_->backpressured) {
            traced_->backpressured = held;
            context_.trace->instant(held ? "backpressure on" : "backpressure off", traced_->id);
        }
    }
    const std::size_t pending = session_.pending_output().size();
    if (pacer_.holds_answers()) {
        const bool none_before = releasable_ == 0;
        releasable_ = pacer_.releasable(sent_total_, pending, now, session_.status() != Session::Status::open);
        // Held answers released now are output the client could not have taken before: the quiet
        // clock (--send-timeout, --idle-timeout) starts again here, not at the question.
        if (none_before && releasable_ > 0) last_activity_ = std::max(last_activity_, now);
    } else {
        releasable_ = pending;
    }
    if (stopping() && peer_eof_) drained_ = true;

    if (session_.done()) {
        const char* words = log_session_end(context_, intake_.peer(), session_, conversed_ > 0);
        if (session_.status() == Session::Status::too_long) {
            linger(now, now + close_linger, words);
        } else {
            end(Fate::close, words);
        }
        return;
    }
    // Stopping: what had arrived is answered, and every answer (held ones too) has left.
    if (stopping() && drained_ && session_.pending_output().empty()) {
        linger(now, stop_deadline_, log_closed_on_stop(context_, intake_.peer()));
        return;
    }
    if (!session_.has_partial_question()) {
        question_deadline_ = never;
    } else if (question_deadline_ == never) {
        question_deadline_ = deadline_after(now, context_.rules.question_timeout);
    }
}

void Connection::linger(TimePoint now, TimePoint limit, const char* reason) {
    if (traced_) traced_->close_reason = reason;
    limit = std::min({limit, stop_deadline_, now + close_linger});
    if (peer_eof_ || now >= limit) {
        end(Fate::close);
        return;
    }
    phase_ = Phase::lingering;
    fate_ = Fate::linger;
    releasable_ = 0;
    linger_until_ = limit;
}

void Connection::end(Fate fate, std::string_view reason) {
    phase_ = Phase::over;
    fate_ = fate;
    releasable_ = 0;
    // The driver closes the socket as soon as it sees the fate: the span ends here, with the
    // reason's text while it is at hand.
    close_span(reason);
}

void Connection::answers_made(std::uint64_t answers, std::uint64_t end, TimePoint now, TimePoint traced) {
    if (batch_count_ == max_batches) {
        AnswerBatch& last = batches_[(first_batch_ + batch_count_ - 1) % max_batches];
        last.end = end;
        last.answers += answers;
        return;
    }
    const std::size_t slot = (first_batch_ + batch_count_) % max_batches;
    batches_[slot] = AnswerBatch{end, answers, now};
    if (traced_) traced_->batch_start[slot] = traced;
    ++batch_count_;
}

void Connection::answers_sent(TimePoint now) {
    const TimePoint traced_end = traced_ ? traced_->output_at : TimePoint{};
    while (batch_count_ > 0 && batches_[first_batch_].end <= sent_total_) {
        const AnswerBatch& batch = batches_[first_batch_];
        context_.tracker.answer_took(now - batch.made, batch.answers);
        if (traced_) trace_answers(batch, traced_end);
        first_batch_ = static_cast<std::uint8_t>((first_batch_ + 1) % max_batches);
        --batch_count_;
    }
}

// One X event per answer of a batch whose last byte has just left; the batches still waiting
// hold the later questions' answers.
void Connection::trace_answers(const AnswerBatch& batch, TimePoint end) {
    std::uint64_t later = 0;
    for (std::uint8_t i = 1; i < batch_count_; ++i) later += batches_[(first_batch_ + i) % max_batches].answers;
    const std::uint64_t first = answers_counted_ - later - batch.answers + 1;
    for (std::uint64_t k = 0; k < batch.answers; ++k) {
        context_.trace->complete("answer", traced_->batch_start[first_batch_], end, traced_->id, first + k);
    }
}

TimePoint Connection::quiet_deadline() const {
    return deadline_after(last_activity_, quiet_limit(context_.rules, answers_waiting()));
}

// --- what to do -----------------------------------------------------------------------------

std::string_view Connection::output() const {
    if (phase_ == Phase::turning_away) return server_busy_answer.substr(std::min(busy_sent_, server_busy_answer.size()));
    if (phase_ != Phase::conversing) return {};
    if (traced_ && releasable_ > 0) traced_->output_at = TraceRecorder::now();
    return session_.pending_output().substr(0, releasable_);
}

bool Connection::wants_read() const {
    switch (phase_) {
        case Phase::header:
            return !drained_;
        case Phase::conversing:
            return session_.wants_input() && !drained_;
        case Phase::lingering:
            return !peer_eof_;
        case Phase::turning_away:
        case Phase::over:
            return false;
    }
    return false;
}

bool Connection::reads_without_waiting() const {
    return stopping() && (phase_ == Phase::header || phase_ == Phase::conversing) && wants_read();
}

TimePoint Connection::next_deadline() const {
    switch (phase_) {
        case Phase::over:
            return never;
        case Phase::lingering:
        case Phase::turning_away:
            return linger_until_;
        case Phase::header:
            return std::min(intake_.header_deadline(), stop_deadline_);
        case Phase::conversing:
            break;
    }
    if (stopping()) return std::min(stop_deadline_, pacer_.next_release());
    return std::min({question_deadline_, quiet_deadline(), pacer_.next_release()});
}

Connection::Fate Connection::fate() const { return fate_; }

}  // namespace zen
