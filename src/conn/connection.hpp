// One client's connection, from accept to close, as a sans-I/O state machine (DESIGN §5): every
// rule of a connection's life, written once. It owns the intake (access verdict, PROXY header
// phase), the Session, --delay and --wait pacing, every deadline (header, question, idle, send,
// drain), the linger after an error answer, the drain when the server stops, the book's log line
// of how it ended and the counters. It has no socket and never reads a clock: the driver (the
// architecture) feeds it what happened and when, and does what it asks.
//
// A driver's loop, in any architecture:
//   - send output() if it is not empty, then report sent(n, now) (or failed(error, now));
//   - read while wants_read(), and report received(bytes, now), received_eof(now) or
//     failed(error, now); while reads_without_waiting() (the server is stopping), read only what
//     has arrived and report nothing_to_read(now) when the socket is empty;
//   - wake by deadline() at the latest and call tick(now); call stop(now, drain_deadline) once
//     when the server stops;
//   - after each of these, act on fate(): keep going; linger (shut down writing, go on reading
//     and discarding until EOF or deadline(), then close); close; or drop.
// Threading: one thread at a time; the context's log and tracker are thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/clock.hpp"
#include "conn/answer_pacer.hpp"
#include "conn/client_log.hpp"
#include "conn/intake.hpp"
#include "conn/rules.hpp"
#include "net/address.hpp"
#include "net/io.hpp"
#include "proto/session.hpp"

namespace zen {

class Connection {
public:
    enum class Fate {
        keep,    // go on: send output(), read while wants_read(), wake at deadline()
        linger,  // every answer is out: shut down writing, read and discard until EOF or deadline()
        close,   // over, every answer handed over: close (a queue in front of the socket is sent first)
        drop,    // over: close now and drop whatever is still queued (refused, timed out, failed)
    };

    // Admits or refuses the client at once (access rules, --max-connections): a refused one is
    // dropped before a byte is read; a busy one is sent server_busy_answer and lingers.
    Connection(const ConnectionContext& context, const SocketAddress& peer, TimePoint now);
    ~Connection();
    Connection(const Connection&) = delete;
    Connection& operator=(const Connection&) = delete;

    // --- what happened ----------------------------------------------------------------------
    void received(std::string_view bytes, TimePoint now);
    // Bytes in which the driver's own framing found no '?' (asynchat's collect_incoming_data):
    // the session keeps them without scanning them again.
    void received_unframed(std::string_view bytes, TimePoint now);
    void received_eof(TimePoint now);
    // While stopping: a read found nothing more waiting.
    void nothing_to_read(TimePoint now);
    // n bytes of output() left for the client.
    void sent(std::size_t n, TimePoint now);
    // A read or a send failed (a reset, a broken pipe, ...): the error text is logged unless a
    // deadline had already passed, which is then the reason. `silence`: the kernel gave up on a
    // peer that went silent (peer_silence()), a timeout of its own kind, not an error.
    void failed(std::string_view error, TimePoint now, PeerSilence silence = PeerSilence::none);
    // The server is stopping: answer what has arrived, send it, close by drain_deadline.
    void stop(TimePoint now, TimePoint drain_deadline);
    // Acts on every deadline that has passed: a timeout, a --wait answer now due, the linger's end.
    void tick(TimePoint now);

    // --- what to do -------------------------------------------------------------------------
    // The bytes to send now (answers held by --wait are not in it until they are due).
    std::string_view output() const;
    bool wants_read() const;
    // Stopping: read only what has already arrived, then call nothing_to_read().
    bool reads_without_waiting() const;
    // When tick() has something to do; never if nothing is pending.
    TimePoint deadline() const { return deadline_; }
    Fate fate() const;
    bool stopping() const { return stop_deadline_ != never; }
    // The client as the log names it (the real one behind a PROXY header).
    const std::string& peer() const { return intake_.peer(); }
    const Session& session() const { return session_; }

private:
    enum class Phase { header, conversing, turning_away, lingering, over };

    // Every input ends by working out the next deadline once: drivers ask for it often.
    struct Recompute {
        explicit Recompute(Connection& connection) : connection_(connection) {}
        ~Recompute() { connection_.deadline_ = connection_.next_deadline(); }
        Connection& connection_;
    };
    TimePoint next_deadline() const;

    void converse(std::string_view bytes, bool unframed, TimePoint now);
    // After every input: counts new answers, releases due ones, and decides how it ends.
    void settle(TimePoint now);
    // `reason`: the log's words for the end, for a traced connection's span (a linger keeps its
    // reason until the close).
    void linger(TimePoint now, TimePoint limit, const char* reason);
    void end(Fate fate, std::string_view reason = {});
    // --trace: the connection's span opens once it is accepted (after any PROXY header).
    void open_span();
    void close_span(std::string_view reason);  // empty: the linger's reason
    void timed_out(Timeout timeout);
    // Answers made at `now` whose last byte ends the output stream at sent offset `end`.
    void answers_made(std::uint64_t answers, std::uint64_t end, TimePoint now, TimePoint traced);
    // Output up to sent_total_ has left: every answer it completes is timed.
    void answers_sent(TimePoint now);
    struct AnswerBatch;
    void trace_answers(const AnswerBatch& batch, TimePoint end);
    bool answers_waiting() const { return releasable_ > 0; }
    TimePoint quiet_deadline() const;

    const ConnectionContext& context_;
    ClientIntake intake_;
    Session session_;
    AnswerPacer pacer_;
    Phase phase_ = Phase::conversing;
    Fate fate_ = Fate::keep;
    bool counted_open_ = false;  // counted in the tracker's open connections
    bool peer_eof_ = false;      // the client will send nothing more
    bool drained_ = false;       // stopping, and what had arrived is read
    bool counted_draining_ = false;   // counted in the tracker's draining connections
    // The batches' ring below: here, beside the flags, where they fill what would be padding.
    std::uint8_t first_batch_ = 0;
    std::uint8_t batch_count_ = 0;
    std::uint64_t received_total_ = 0;  // bytes read, PROXY header included
    std::uint64_t conversed_ = 0;       // bytes of the conversation (after any header): 0 is a health check
    std::size_t releasable_ = 0;      // leading bytes of the session's output that may go now
    std::size_t busy_sent_ = 0;       // of server_busy_answer, while turning away
    std::uint64_t sent_total_ = 0;    // bytes of answers sent, for the pacer
    std::uint64_t answers_counted_ = 0;
    // Answers on their way out, for the answer-time histogram: made at `made`, done once
    // sent_total_ reaches `end`. A few batches (one per read that made answers) suffice; when
    // a deep pipeline has more, the newest join the last batch and are timed from its earlier
    // start, so the histogram errs long, never short, and a connection never allocates for it.
    struct AnswerBatch {
        std::uint64_t end = 0;
        std::uint64_t answers = 0;
        TimePoint made;
    };
    // Four: an idle connection's memory is budgeted (tests/perf), and a client rarely has more
    // reads' answers in flight at once.
    static constexpr std::uint8_t max_batches = 4;
    std::array<AnswerBatch, max_batches> batches_{};
    // --trace only, so an untraced connection pays one pointer: its id in the trace, whether its
    // span is open, the reason a lingering close will give, whether backpressure holds reading
    // off, when output() last handed out answer bytes (the send that follows begins then, so an
    // answer's event ends before the client can have read it), and when each batch's read came.
    struct Traced {
        std::uint64_t id = 0;
        const char* close_reason = nullptr;
        bool span_open = false;
        bool backpressured = false;
        TimePoint output_at{};
        std::array<TimePoint, max_batches> batch_start{};
    };
    std::unique_ptr<Traced> traced_;
    TimePoint last_seen_;             // the latest time any input carried
    TimePoint last_activity_;         // the latest byte in or out
    TimePoint question_deadline_ = never;
    TimePoint linger_until_ = never;
    TimePoint stop_deadline_ = never;
    TimePoint deadline_ = never;
};

// For a driver: a read or send on the connection's socket `fd` failed with errno `error`.
inline void report_socket_error(Connection& connection, int fd, int error, TimePoint now) {
    connection.failed(errno_text(error), now, peer_silence(fd, error));
}

}  // namespace zen
