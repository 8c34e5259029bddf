// The simulation's independent model of one server's connections: what DESIGN §2 and
// docs/protocol.md, docs/lifecycle.md say a connection must do, written again from those pages
// and not by calling zen's Session or Connection. It shares only plain data with zen (the rules
// struct, the counter names, the time type); every decision here is its own code.
//
// The model is told the same inputs as zen's Connection (bytes read, EOF, n bytes sent, a reset,
// a tick, the stop) and predicts what may be sent now, whether to read, when the next deadline is,
// the fate, the log lines in order and every counter.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/clock.hpp"
#include "conn/connection_tracker.hpp"
#include "conn/rules.hpp"

namespace sim {

using zen::never;
using zen::TimePoint;
using Ms = std::chrono::milliseconds;

// The answers of the book's table (DESIGN §2), written here again.
inline std::string_view model_answer(std::string_view question) {
    if (question == "Beautiful is better than?") return "Ugly.";
    if (question == "Explicit is better than?") return "Implicit.";
    if (question == "Simple is better than?") return "Complex.";
    return "Error: unknown aphorism.";
}
inline constexpr std::string_view model_too_long = "Error: question too long.";
inline constexpr std::string_view model_busy = "Error: server busy.";
inline constexpr Ms model_linger{1000};  // "about a second" (DESIGN §2)

// "300 s", "250 ms", as the log writes a limit.
inline std::string limit_words(Ms limit) {
    return limit.count() % 1000 == 0 ? std::to_string(limit.count() / 1000) + " s"
                                     : std::to_string(limit.count()) + " ms";
}

// Python's repr() of bytes, as the book's log shows an abandoned question (cut at 200 bytes).
inline std::string python_bytes(std::string_view bytes) {
    const std::string_view shown = bytes.substr(0, 200);
    const bool has_single = shown.find('\'') != std::string_view::npos;
    const bool has_double = shown.find('"') != std::string_view::npos;
    const char quote = has_single && !has_double ? '"' : '\'';
    std::string text = "b";
    text += quote;
    for (unsigned char c : shown) {
        static const char digits[] = "0123456789abcdef";
        if (c == static_cast<unsigned char>(quote) || c == '\\') {
            text += '\\';
            text += static_cast<char>(c);
        } else if (c == '\t') {
            text += "\\t";
        } else if (c == '\n') {
            text += "\\n";
        } else if (c == '\r') {
            text += "\\r";
        } else if (c < 0x20 || c >= 0x7f) {
            text += "\\x";
            text += digits[c >> 4];
            text += digits[c & 15];
        } else {
            text += static_cast<char>(c);
        }
    }
    text += quote;
    if (shown.size() < bytes.size()) text += "... (" + std::to_string(bytes.size()) + " bytes)";
    return text;
}

// One expected log line: the whole line, or (prefix) its start.
struct ExpectedLine {
    std::string text;
    bool prefix = false;
    std::uint64_t step = 0;  // the simulation step that wrote it
};

// What the whole server has done, as the model sees it.
struct ModelServer {
    const zen::ConnectionRules* rules = nullptr;
    std::array<std::uint64_t, zen::counter_kinds> counters{};
    int active = 0;    // admitted and not yet closed
    int draining = 0;  // of those, stopped and not yet closed
    std::vector<ExpectedLine> log;
    std::uint64_t step = 0;
    // Answers whose last byte has certainly left (of connections that closed gracefully): each
    // must be in the answer-time histogram.
    std::uint64_t timed_at_least = 0;

    void count(zen::Counter c, std::uint64_t n = 1) { counters[static_cast<std::size_t>(c)] += n; }
    void line(std::string text, bool prefix = false) { log.push_back({std::move(text), prefix, step}); }
};

// How a connection under --proxy-protocol begins, as the scenario built it: the model knows from
// the bytes it chose where the header phase must be decided, and how.
struct HeaderPlan {
    enum class Kind {
        none,            // --proxy-protocol off: no header phase
        relayed,         // a trusted proxy's valid header naming `client`
        invalid,         // a trusted proxy's malformed header
        missing,         // a trusted proxy that sends questions straight away
        forged,          // an untrusted peer sending a valid header
        direct,          // an untrusted peer sending questions
    };
    Kind kind = Kind::none;
    std::size_t decided_at = 0;  // bytes after which it is decided (SIZE_MAX: never)
    std::size_t header_length = 0;  // relayed: bytes of the header; the rest is conversation
    std::string client;          // relayed: the client as the log names it
    bool client_denied = false;  // relayed: the client is in a --deny range
};

class ModelConnection {
public:
    enum class Phase { header, talk, busy, linger, over };
    enum class Fate { keep, linger, close, drop };
    enum class Status { open, finished, partial, too_long };

    ModelConnection(ModelServer& server, std::string peer, bool trusted, bool denied, HeaderPlan plan, TimePoint now)
        : server_(server), rules_(*server.rules), peer_(std::move(peer)), plan_(std::move(plan)), last_activity_(now),
          next_free_(now) {
        const bool gated = plan_.kind != HeaderPlan::Kind::none;
        if (!trusted && denied) {
            refuse("denied by --deny", zen::Counter::refused_denied);
            end(Fate::drop);
            return;
        }
        if (rules_.max_connections > 0 && server_.active >= rules_.max_connections) {
            refuse("server busy (--max-connections " + std::to_string(rules_.max_connections) + ")",
                   zen::Counter::refused_busy);
            phase_ = Phase::busy;
            turned_away_ = true;
            linger_until_ = now + model_linger;
            return;
        }
        ++server_.active;
        open_ = true;
        if (gated) {
            phase_ = Phase::header;
            header_deadline_ = after(now, trusted ? rules_.proxy.header_timeout : rules_.idle_timeout);
            trusted_ = trusted;
        } else {
            accepted(peer_);
            phase_ = Phase::talk;
        }
    }

    // --- inputs, as zen's Connection gets them ------------------------------------------------
    void received(std::string_view bytes, TimePoint now) {
        received_total_ += bytes.size();
        server_.count(zen::Counter::bytes_received, bytes.size());
        if (phase_ == Phase::header) {
            last_activity_ = now;
            header_bytes_.append(bytes);
            if (header_bytes_.size() < plan_.decided_at) return;
            decide_header(now);
            return;
        }
        if (phase_ == Phase::talk) converse(bytes, now);
    }

    void received_eof(TimePoint now) {
        peer_eof_ = true;
        switch (phase_) {
            case Phase::header:
                if (received_total_ == 0) server_.count(zen::Counter::health_checks);
                server_.line("Client socket to " + peer_ + " closed before its PROXY header was complete");
                end(Fate::drop);
                return;
            case Phase::talk:
                session_eof();
                settle(now);
                return;
            case Phase::linger:
                end(Fate::close);
                return;
            default:
                return;
        }
    }

    void nothing_to_read(TimePoint now) {
        if (!stopping() || drained_) return;
        drained_ = true;
        // Still reading a PROXY header as the server stops: no question can have come, and the
        // connection is dropped without a line (zen's choice; the documents are silent).
        if (phase_ == Phase::header) {
            end(Fate::drop);
            return;
        }
        settle(now);
    }

    void sent(std::size_t n, TimePoint now) {
        server_.count(zen::Counter::bytes_sent, n);
        if (phase_ == Phase::busy) {
            busy_sent_ += n;
            if (busy_sent_ >= model_busy.size()) linger(now, now + model_linger);
            return;
        }
        if (phase_ != Phase::talk || n == 0) return;
        consume(n);
        last_activity_ = now;
        settle(now);
    }

    void failed(std::string_view error, TimePoint now) {
        if (phase_ == Phase::over) return;
        if (now >= deadline()) {
            tick(now);
            if (phase_ == Phase::over) return;
        }
        if (phase_ == Phase::header || phase_ == Phase::talk) {
            const bool sent_anything = phase_ == Phase::header ? received_total_ > 0 : conversed_ > 0;
            if (sent_anything) {
                server_.count(zen::Counter::resets);
                server_.line("Client " + peer_ + " error: " + std::string(error));
            } else {
                server_.count(zen::Counter::health_checks);
                server_.line("Client socket to " + peer_ + " has closed (" + std::string(error) + ", nothing sent)");
            }
        }
        end(Fate::drop);
    }

    void stop(TimePoint now, TimePoint drain_deadline) {
        if (stopping() || phase_ == Phase::over) return;
        stop_deadline_ = drain_deadline;
        if (open_) {
            draining_ = true;
            ++server_.draining;
        }
        linger_until_ = std::min(linger_until_, drain_deadline);
        settle(now);
    }

    // When a clock jump passes several deadlines at once, the documents do not say which one is
    // the reason; the model takes zen's order: the drain, then the question timeout, then the
    // idle or send timeout, then --wait answers now due.
    void tick(TimePoint now) {
        switch (phase_) {
            case Phase::over:
                return;
            case Phase::linger:
                if (now >= linger_until_) end(Fate::close);
                return;
            case Phase::busy:
                if (now >= linger_until_) end(Fate::drop);
                return;
            case Phase::header:
                if (stopping() && now >= stop_deadline_) {
                    end(Fate::drop);
                } else if (now >= header_deadline_) {
                    if (trusted_) {
                        server_.count(zen::Counter::timeout_proxy_header);
                        server_.line("Client " + peer_ + " refused: no PROXY header within " +
                                     limit_words(rules_.proxy.header_timeout));
                        end(Fate::drop);
                    } else {
                        timeout(zen::Counter::timeout_idle, "idle for " + limit_words(rules_.idle_timeout));
                    }
                }
                return;
            case Phase::talk:
                break;
        }
        if (stopping()) {
            if (now >= stop_deadline_) {
                timeout(zen::Counter::timeout_drain, "not reading its answers; closed as the server stops");
                return;
            }
        } else if (now >= question_deadline_) {
            timeout(zen::Counter::timeout_question,
                    "question not finished within " + limit_words(rules_.question_timeout));
            return;
        } else if (now >= quiet_deadline()) {
            if (releasable_ > 0) {
                timeout(zen::Counter::timeout_send, "not reading its answers for " + limit_words(send_limit()));
            } else {
                timeout(zen::Counter::timeout_idle, "idle for " + limit_words(rules_.idle_timeout));
            }
            return;
        }
        settle(now);
    }

    // The driver closed it (fate close or drop, or a linger's end).
    void closed() {
        if (fate_ == Fate::close && !turned_away_ && all_delivered()) server_.timed_at_least += answered_;
        if (draining_) --server_.draining;
        if (open_) --server_.active;
        draining_ = open_ = false;
    }

    // --- what zen must say ----------------------------------------------------------------
    std::string_view output() const {
        if (phase_ == Phase::busy) return model_busy.substr(std::min(busy_sent_, model_busy.size()));
        if (phase_ != Phase::talk) return {};
        return std::string_view(out_).substr(sent_, releasable_);
    }
    bool wants_read() const {
        switch (phase_) {
            case Phase::header:
                return !drained_;
            case Phase::talk:
                return wants_input() && !drained_;
            case Phase::linger:
                return !peer_eof_;
            default:
                return false;
        }
    }
    bool reads_without_waiting() const {
        return stopping() && (phase_ == Phase::header || phase_ == Phase::talk) && wants_read();
    }
    TimePoint deadline() const {
        switch (phase_) {
            case Phase::over:
                return never;
            case Phase::linger:
            case Phase::busy:
                return linger_until_;
            case Phase::header:
                return std::min(header_deadline_, stop_deadline_);
            case Phase::talk:
                break;
        }
        if (stopping()) return std::min(stop_deadline_, next_release());
        return std::min({question_deadline_, quiet_deadline(), next_release()});
    }
    Fate fate() const { return fate_; }
    bool stopping() const { return stop_deadline_ != never; }
    // Every answer byte the client was owed has been handed over.
    bool all_delivered() const { return turned_away_ ? busy_sent_ >= model_busy.size() : sent_ == out_.size(); }
    std::string_view expected_stream() const { return turned_away_ ? model_busy : std::string_view(out_); }
    std::uint64_t delivered() const { return turned_away_ ? busy_sent_ : sent_; }
    Phase phase() const { return phase_; }

private:
    static TimePoint after(TimePoint from, Ms limit) { return limit.count() > 0 ? from + limit : never; }

    void refuse(const std::string& why, zen::Counter counter) {
        server_.count(counter);
        server_.line("Client " + peer_ + " refused: " + why);
    }
    void accepted(const std::string& who) {
        server_.count(zen::Counter::accepted);
        server_.line("Accepted connection from " + who);
    }
    void timeout(zen::Counter counter, const std::string& words) {
        server_.count(counter);
        server_.line("Client " + peer_ + " error: " + words);
        end(Fate::drop);
    }
    void end(Fate fate) {
        phase_ = Phase::over;
        fate_ = fate;
        releasable_ = 0;
    }

    void decide_header(TimePoint now) {
        using Kind = HeaderPlan::Kind;
        switch (plan_.kind) {
            case Kind::forged:
                refuse("PROXY header from an address that is not a --trusted-proxy", zen::Counter::refused_proxy);
                end(Fate::drop);
                return;
            case Kind::missing:
                refuse("a trusted proxy sent no PROXY header", zen::Counter::error_invalid_proxy_header);
                end(Fate::drop);
                return;
            case Kind::invalid:
                server_.count(zen::Counter::error_invalid_proxy_header);
                server_.line("Client " + peer_ + " refused: invalid PROXY header: ", true);
                end(Fate::drop);
                return;
            case Kind::relayed: {
                const std::string proxy = peer_;
                peer_ = plan_.client;
                if (plan_.client_denied) {
                    refuse("denied by --deny", zen::Counter::refused_denied);
                    end(Fate::drop);
                    return;
                }
                // Also for a LOCAL or UNKNOWN header, whose client is the proxy itself (zen's
                // choice: docs/deploy.md says only that the address is kept).
                server_.line("Client " + peer_ + " comes through proxy " + proxy);
                accepted(peer_);
                phase_ = Phase::talk;
                const std::string rest = header_bytes_.substr(plan_.header_length);
                header_bytes_.clear();
                converse(rest, now);
                return;
            }
            case Kind::direct: {
                accepted(peer_);
                phase_ = Phase::talk;
                const std::string rest = std::move(header_bytes_);
                header_bytes_.clear();
                converse(rest, now);
                return;
            }
            case Kind::none:
                return;
        }
    }

    // --- the conversation (DESIGN §2) ---------------------------------------------------------
    std::size_t pending() const { return out_.size() - sent_; }
    bool full() const { return pending() >= rules_.limits.max_pending; }
    bool wants_input() const { return status_ == Status::open && !eof_ && !full(); }
    // A question begun and not finished, while there is room to answer it: under backpressure
    // --question-timeout does not run (zen's choice; the client cannot finish a question the
    // server does not read).
    bool partial_question() const { return !in_.empty() && !full(); }
    bool done() const { return status_ != Status::open && pending() == 0; }

    // Answers questions from the front of in_ while the pending answers are under max_pending.
    void answer_what_can_be() {
        while (status_ == Status::open && !full()) {
            std::size_t blanks = 0;
            while (blanks < in_.size() && (in_[blanks] == ' ' || in_[blanks] == '\t' || in_[blanks] == '\r' ||
                                           in_[blanks] == '\n'))
                ++blanks;
            in_.erase(0, blanks);
            if (in_.empty()) return;
            const std::size_t mark = in_.find('?');
            if (mark != std::string::npos && mark + 1 <= rules_.limits.max_question) {
                out_.append(model_answer(std::string_view(in_).substr(0, mark + 1)));
                ++answered_;
                in_.erase(0, mark + 1);
                continue;
            }
            if (in_.size() > rules_.limits.max_question) {
                too_long_at_ = out_.size();
                out_.append(model_too_long);
                status_ = Status::too_long;
                in_.clear();
            }
            return;
        }
    }
    void session_eof() {
        if (eof_) return;
        eof_ = true;
        close_if_whole();
    }
    void close_if_whole() {
        if (status_ != Status::open || full()) return;
        answer_what_can_be();
        if (status_ != Status::open || full()) return;
        status_ = in_.empty() ? Status::finished : Status::partial;
    }
    void consume(std::size_t n) {
        sent_ += std::min<std::uint64_t>(n, pending());
        if (status_ != Status::open || full()) return;
        if (eof_) {
            close_if_whole();
        } else if (!in_.empty()) {
            answer_what_can_be();
        }
    }

    void converse(std::string_view bytes, TimePoint now) {
        const std::uint64_t before = answered_;
        conversed_ += bytes.size();
        if (status_ == Status::open && !eof_ && !bytes.empty()) {
            in_.append(bytes);
            answer_what_can_be();
        }
        // Whitespace that answers nothing and starts no question is silence.
        if (answered_ != before || partial_question() || status_ != Status::open) last_activity_ = now;
        settle(now);
    }

    // After every input: count and pace new answers, then see how it ends.
    void settle(TimePoint now) {
        if (phase_ != Phase::talk) return;
        if (answered_ > counted_) {
            const std::uint64_t fresh = answered_ - counted_;
            counted_ = answered_;
            server_.count(zen::Counter::answered, fresh);
            if (rules_.wait.count() > 0) {
                // --wait: one wait per answer, batch after batch; answers that came together go together.
                next_free_ = std::max(next_free_, now) + rules_.wait * static_cast<long>(fresh);
                held_.push_back({out_.size(), next_free_});
            }
        }
        const std::size_t was_releasable = releasable_;
        releasable_ = releasable(now);
        // Output the client can take from now on (answers --wait held, the error after them):
        // the quiet clock starts again, since the client could not have taken it before.
        if (releasable_ > 0 && was_releasable == 0) last_activity_ = std::max(last_activity_, now);
        if (stopping() && peer_eof_) drained_ = true;
        if (done()) {
            switch (status_) {
                case Status::finished:
                    if (conversed_ == 0) server_.count(zen::Counter::health_checks);
                    server_.line("Client socket to " + peer_ + " has closed");
                    end(Fate::close);
                    return;
                case Status::partial:
                    server_.line("Client " + peer_ + " sent " + python_bytes(in_) + " but then closed");
                    end(Fate::close);
                    return;
                case Status::too_long:
                    server_.count(zen::Counter::error_question_too_long);
                    server_.line("Client " + peer_ + " error: question too long (over " +
                                 std::to_string(rules_.limits.max_question) + " bytes)");
                    linger(now, now + model_linger);
                    return;
                case Status::open:
                    break;
            }
        }
        // Stopping: once what had arrived is answered and every answer (held ones too) is out.
        if (stopping() && drained_ && pending() == 0) {
            server_.line("Client socket to " + peer_ + " closed: server stopping");
            linger(now, stop_deadline_);
            return;
        }
        if (!partial_question()) {
            question_deadline_ = never;
        } else if (question_deadline_ == never) {
            question_deadline_ = after(now, rules_.question_timeout);
        }
    }

    std::size_t releasable(TimePoint now) {
        if (rules_.wait.count() == 0) return pending();
        while (!held_.empty() && held_.front().when <= now) {
            released_to_ = held_.front().end;
            held_.erase(held_.begin());
        }
        std::uint64_t released = released_to_;
        // The error answer waits for nothing but the answers before it.
        if (status_ == Status::too_long && released >= too_long_at_) released = out_.size();
        const std::uint64_t allowed = released > sent_ ? released - sent_ : 0;
        return static_cast<std::size_t>(std::min<std::uint64_t>(allowed, pending()));
    }
    TimePoint next_release() const { return held_.empty() ? never : held_.front().when; }

    Ms send_limit() const {
        if (rules_.send_timeout.count() == 0) return rules_.idle_timeout;
        if (rules_.idle_timeout.count() == 0) return rules_.send_timeout;
        return std::min(rules_.idle_timeout, rules_.send_timeout);
    }
    // Silence in both directions for --idle-timeout (also while --wait holds answers: nothing
    // moves either way); answers waiting untaken for --send-timeout. Both count from the last
    // byte moved or from when output could first be taken, whichever came later (an answer
    // --wait held was not waiting for the client).
    TimePoint quiet_deadline() const {
        return after(last_activity_, releasable_ > 0 ? send_limit() : rules_.idle_timeout);
    }

    void linger(TimePoint now, TimePoint limit) {
        limit = std::min({limit, stop_deadline_, now + model_linger});
        if (peer_eof_ || now >= limit) {
            end(Fate::close);
            return;
        }
        phase_ = Phase::linger;
        fate_ = Fate::linger;
        releasable_ = 0;
        linger_until_ = limit;
    }

    ModelServer& server_;
    const zen::ConnectionRules& rules_;
    std::string peer_;
    HeaderPlan plan_;
    bool trusted_ = false;
    Phase phase_ = Phase::talk;
    Fate fate_ = Fate::keep;
    bool open_ = false;
    bool turned_away_ = false;
    bool draining_ = false;
    bool peer_eof_ = false;
    bool drained_ = false;
    std::string header_bytes_;
    std::uint64_t received_total_ = 0;
    std::uint64_t conversed_ = 0;
    std::size_t busy_sent_ = 0;
    // The session: input not yet answered, every answer byte owed (out_), how much has left.
    std::string in_;
    std::string out_;
    std::uint64_t sent_ = 0;
    std::uint64_t answered_ = 0;
    std::uint64_t counted_ = 0;
    std::uint64_t too_long_at_ = 0;
    Status status_ = Status::open;
    bool eof_ = false;
    // --wait
    struct Held {
        std::uint64_t end;
        TimePoint when;
    };
    std::vector<Held> held_;
    std::uint64_t released_to_ = 0;
    std::size_t releasable_ = 0;
    TimePoint last_activity_;
    TimePoint next_free_;
    TimePoint question_deadline_ = never;
    TimePoint header_deadline_ = never;
    TimePoint linger_until_ = never;
    TimePoint stop_deadline_ = never;
};

}  // namespace sim
