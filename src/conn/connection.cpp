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
    deadline_ = next_deadline();
}

Connection::~Connection() {
    if (counted_draining_) context_.tracker.draining(-1);
    if (counted_open_) context_.tracker.closed(last_seen_);
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
            end(Fate::drop);
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
        if (busy_sent_ >= server_busy_answer.size()) linger(now, now + close_linger);
        return;
    }
    if (phase_ != Phase::conversing || n == 0) return;
    session_.consume_output(n);
    sent_total_ += n;
    last_activity_ = now;
    answers_sent(now);
    settle(now);
}

void Connection::failed(std::string_view error, TimePoint now) {
    const Recompute recompute(*this);
    last_seen_ = now;
    if (phase_ == Phase::over) return;
    if (now >= deadline()) {
        // The driver may have cut the socket to enforce a deadline: the deadline is the reason.
        tick(now);
        if (phase_ == Phase::over) return;
    }
    if (phase_ == Phase::header || phase_ == Phase::conversing) {
        const bool sent_anything = phase_ == Phase::header ? received_total_ > 0 : conversed_ > 0;
        log_client_error(context_, intake_.peer(), error, sent_anything);
    }
    end(Fate::drop);  // lingering or turning away, its end is logged already
}

void Connection::stop(TimePoint now, TimePoint drain_deadline) {
    const Recompute recompute(*this);
    last_seen_ = now;
    if (stopping() || phase_ == Phase::over) return;
    stop_deadline_ = drain_deadline;
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
            log_timeout(context_, intake_.peer(), Timeout::drain);
            end(Fate::drop);
            return;
        }
    } else if (now >= question_deadline_) {
        log_timeout(context_, intake_.peer(), Timeout::question);
        end(Fate::drop);
        return;
    } else if (now >= quiet_deadline()) {
        log_timeout(context_, intake_.peer(), answers_waiting() ? Timeout::send : Timeout::idle);
        end(Fate::drop);
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
        pacer_.answered(answers, sent_total_ + session_.pending_output().size(), now);
        answers_made(answers, sent_total_ + session_.pending_output().size(), now);
    }
    const std::size_t pending = session_.pending_output().size();
    releasable_ = pacer_.holds_answers() ? pacer_.releasable(sent_total_, pending, now) : pending;
    if (stopping() && peer_eof_) drained_ = true;

    if (session_.done()) {
        log_session_end(context_, intake_.peer(), session_, conversed_ > 0);
        if (session_.status() == Session::Status::too_long) {
            linger(now, now + close_linger);
        } else {
            end(Fate::close);
        }
        return;
    }
    // Stopping: what had arrived is answered, and every answer (held ones too) has left.
    if (stopping() && drained_ && session_.pending_output().empty()) {
        log_closed_on_stop(context_, intake_.peer());
        linger(now, stop_deadline_);
        return;
    }
    if (!session_.has_partial_question()) {
        question_deadline_ = never;
    } else if (question_deadline_ == never) {
        question_deadline_ = deadline_after(now, context_.rules.question_timeout);
    }
}

void Connection::linger(TimePoint now, TimePoint limit) {
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

void Connection::end(Fate fate) {
    phase_ = Phase::over;
    fate_ = fate;
    releasable_ = 0;
}

void Connection::answers_made(std::uint64_t answers, std::uint64_t end, TimePoint now) {
    if (batch_count_ == max_batches) {
        AnswerBatch& last = batches_[(first_batch_ + batch_count_ - 1) % max_batches];
        last.end = end;
        last.answers += answers;
        return;
    }
    batches_[(first_batch_ + batch_count_) % max_batches] = AnswerBatch{end, answers, now};
    ++batch_count_;
}

void Connection::answers_sent(TimePoint now) {
    while (batch_count_ > 0 && batches_[first_batch_].end <= sent_total_) {
        const AnswerBatch& batch = batches_[first_batch_];
        context_.tracker.answer_took(now - batch.made, batch.answers);
        first_batch_ = static_cast<std::uint8_t>((first_batch_ + 1) % max_batches);
        --batch_count_;
    }
}

TimePoint Connection::quiet_deadline() const {
    return deadline_after(last_activity_, quiet_limit(context_.rules, answers_waiting()));
}

// --- what to do -----------------------------------------------------------------------------

std::string_view Connection::output() const {
    if (phase_ == Phase::turning_away) return server_busy_answer.substr(std::min(busy_sent_, server_busy_answer.size()));
    if (phase_ != Phase::conversing) return {};
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
