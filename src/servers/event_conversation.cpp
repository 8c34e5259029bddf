#include "servers/event_conversation.hpp"

#include <sys/socket.h>

#include <algorithm>

#include "net/io.hpp"
#include "servers/connection_tracker.hpp"

namespace zen {

namespace {

constexpr auto never = Clock::time_point::max();

}  // namespace

EventConversation::EventConversation(AcceptedClient client, const ServerContext& context, Clock::time_point now)
    : context_(context),
      fd_(std::move(client.fd)),
      intake_(context, client.peer, now),
      session_(context.table, context.options.limits),
      last_activity_(now),
      pacer_(context.options, now) {
    if (!intake_.open(fd_.get())) {
        close_now();  // before a byte is read
        return;
    }
    context_.tracker.opened();
    counted_ = true;
    peer_ = intake_.peer();
}

EventConversation::~EventConversation() {
    if (counted_) context_.tracker.closed();
}

bool EventConversation::wants_read() const {
    if (phase_ == Phase::lingering) return true;
    return phase_ == Phase::conversing && !draining_ && session_.wants_input();
}

std::string_view EventConversation::releasable(Clock::time_point now) {
    const std::string_view pending = session_.pending_output();
    return pending.substr(0, pacer_.releasable(sent_total_, pending.size(), now));
}

void EventConversation::feed(std::string_view bytes, Clock::time_point now) {
    std::string after_header;
    if (intake_.reading_header()) {
        const ClientIntake::Step step = intake_.feed(bytes);
        if (step == ClientIntake::Step::close) close_now();
        if (step != ClientIntake::Step::converse) return;
        peer_ = intake_.peer();
        after_header = intake_.take_remainder();
        bytes = after_header;
    }
    const auto answers = receive_counted(context_, session_, bytes);
    pacer_.answered(answers, sent_total_ + session_.pending_output().size(), now);
}

void EventConversation::feed_eof(Clock::time_point) {
    if (intake_.reading_header()) {
        intake_.header_cut_short();
        close_now();
        return;
    }
    session_.receive_eof();
}

bool EventConversation::handle_readable(std::span<char> buffer, Clock::time_point now, int read_budget) {
    if (phase_ == Phase::lingering) {
        // Discard until EOF: the client's extra bytes must not turn our close into a reset.
        for (int i = 0; i < read_budget; ++i) {
            const IoResult got = receive_some(fd_.get(), buffer.data(), buffer.size());
            if (got.status == IoStatus::ok) continue;
            read_blocked_ = got.status == IoStatus::would_block;
            if (!read_blocked_) close_now();
            return false;
        }
        return true;
    }
    int reads = 0;
    while (phase_ == Phase::conversing && session_.wants_input()) {
        if (reads++ == read_budget) {
            after_progress(now);
            return true;
        }
        const IoResult got = receive_some(fd_.get(), buffer.data(), buffer.size());
        if (got.status == IoStatus::ok) {
            // A read that did not fill the buffer emptied the socket: what arrives next raises a
            // new readiness event, so the usual second read (the one that says EAGAIN, a third
            // of the system calls per answer) is skipped. Not once the peer has hung up: its EOF
            // raises no further event, so then reading goes on until EOF or EAGAIN.
            read_blocked_ = got.bytes < buffer.size() && !hung_up_;
            last_activity_ = now;
            feed({buffer.data(), got.bytes}, now);
            flush(now);  // write first: most answers leave at once, without waiting for EPOLLOUT
            if (read_blocked_) break;
        } else if (got.status == IoStatus::eof) {
            feed_eof(now);
            break;
        } else if (got.status == IoStatus::would_block) {
            read_blocked_ = true;
            break;
        } else {
            log_client_error(context_, peer_, errno_text(got.error));
            close_now();
            return false;
        }
    }
    after_progress(now);
    return false;
}

void EventConversation::handle_writable(Clock::time_point now) {
    if (phase_ != Phase::conversing) return;
    send_blocked_ = false;
    after_progress(now);
}

void EventConversation::flush(Clock::time_point now) {
    while (phase_ == Phase::conversing) {
        const std::string_view out = releasable(now);
        if (out.empty()) return;
        const IoResult sent = send_some(fd_.get(), out);
        if (sent.status == IoStatus::ok) {
            session_.consume_output(sent.bytes);
            sent_total_ += sent.bytes;
            last_activity_ = now;
            if (sent.bytes < out.size()) {
                send_blocked_ = true;  // a short send: the socket buffer is full
                return;
            }
        } else if (sent.status == IoStatus::would_block) {
            send_blocked_ = true;
            return;
        } else {
            log_client_error(context_, peer_, errno_text(sent.error));
            close_now();
            return;
        }
    }
}

void EventConversation::after_progress(Clock::time_point now) {
    if (phase_ != Phase::conversing) return;
    if (!send_blocked_) flush(now);
    if (phase_ != Phase::conversing) return;
    if (session_.done()) {
        end_conversation(now);
        return;
    }
    if (draining_ && session_.pending_output().empty()) {
        context_.log.connection(LogLevel::info, "closed_on_stop", peer_,
                                "Client socket to " + peer_ + " closed: server stopping");
        start_linger(now, drain_deadline(context_));
        return;
    }
    if (!session_.has_partial_question()) {
        question_deadline_ = never;
    } else if (question_deadline_ == never) {
        question_deadline_ = deadline_after(now, context_.options.question_timeout);
    }
}

void EventConversation::end_conversation(Clock::time_point now) {
    log_session_end(context_, peer_, session_);
    if (session_.status() == Session::Status::too_long) {
        start_linger(now, draining_ ? std::min(drain_deadline(context_), now + close_linger) : now + close_linger);
    } else {
        close_now();
    }
}

void EventConversation::start_linger(Clock::time_point now, Clock::time_point limit) {
    if (now >= limit) {
        close_now();
        return;
    }
    ::shutdown(fd_.get(), SHUT_WR);
    phase_ = Phase::lingering;
    linger_deadline_ = std::min(limit, now + close_linger);
    read_blocked_ = false;
}

void EventConversation::close_now() {
    phase_ = Phase::closed;
    fd_.reset();
}

void EventConversation::begin_drain(std::span<char> buffer, Clock::time_point now) {
    if (phase_ != Phase::conversing || draining_) return;
    // Take in what the client has already sent (reading is over once draining_ is set).
    while (session_.wants_input()) {
        const IoResult got = receive_some(fd_.get(), buffer.data(), buffer.size());
        if (got.status == IoStatus::ok) {
            feed({buffer.data(), got.bytes}, now);
            flush(now);
            continue;
        }
        if (got.status == IoStatus::eof) feed_eof(now);
        break;
    }
    draining_ = true;
    after_progress(now);
}

Clock::time_point EventConversation::next_deadline() const {
    switch (phase_) {
        case Phase::closed:
            return never;
        case Phase::lingering:
            return linger_deadline_;
        case Phase::conversing:
            break;
    }
    if (draining_) return drain_deadline(context_);
    if (intake_.reading_header()) return intake_.header_deadline();
    auto deadline =
        std::min(question_deadline_, deadline_after(last_activity_, quiet_limit(context_.options, send_blocked_)));
    return std::min(deadline, pacer_.next_release());
}

void EventConversation::handle_deadline(Clock::time_point now) {
    switch (phase_) {
        case Phase::closed:
            return;
        case Phase::lingering:
            if (now >= linger_deadline_) close_now();
            return;
        case Phase::conversing:
            break;
    }
    if (draining_) {
        if (now >= drain_deadline(context_)) {
            log_client_timeout(context_, peer_, "not reading its answers; closed as the server stops");
            close_now();
        }
        return;
    }
    if (intake_.reading_header()) {
        if (now >= intake_.header_deadline()) {
            intake_.header_timed_out();
            close_now();
        }
        return;
    }
    if (now >= question_deadline_) {
        log_client_timeout(context_, peer_,
                         "question not finished within " + duration_text(context_.options.question_timeout));
        close_now();
        return;
    }
    if (now >= deadline_after(last_activity_, quiet_limit(context_.options, send_blocked_))) {
        log_client_timeout(context_, peer_,
                         send_blocked_ ? "not reading its answers for " + duration_text(quiet_limit(context_.options, true))
                                       : "idle for " + duration_text(context_.options.idle_timeout));
        close_now();
        return;
    }
    after_progress(now);  // --wait answers whose time has come
}

}  // namespace zen
