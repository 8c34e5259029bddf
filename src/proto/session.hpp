// The Zen conversation as a sans-I/O state machine (DESIGN §2, §5): fed bytes and EOF, it hands
// back the bytes to send and says when the conversation is over. It knows nothing of sockets,
// threads or clocks; the drivers in src/servers/ move bytes and keep the timers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "proto/aphorisms.hpp"

namespace zen {

inline constexpr std::string_view question_too_long_answer = "Error: question too long.";
inline constexpr std::string_view server_busy_answer = "Error: server busy.";

struct SessionLimits {
    std::size_t max_question = 4096;     // bytes of one question, its '?' included
    std::size_t max_pending = 64 * 1024;  // answered bytes not yet taken before input stops
};

class Session {
public:
    enum class Status {
        open,            // conversation goes on
        finished,        // client sent EOF after whole questions only
        partial_at_eof,  // client sent EOF in the middle of a question (see unanswered_bytes)
        too_long,        // a question broke max_question; the error answer is the last output
    };

    // Does not own the table; it must outlive the session.
    Session(const AphorismTable& table, SessionLimits limits);
    // Answers each question from the live table as it is when the question is complete. Does
    // not own the live table; it must outlive the session.
    Session(const LiveTable& live, SessionLimits limits);

    // Bytes from the client. Questions are answered in order until the pending output reaches
    // max_pending; what is left waits here and is answered as the output is consumed. Callers
    // should stop reading while wants_input() is false: that keeps memory bounded.
    void receive(std::string_view data);
    // Bytes in which the caller's own framing found no '?' (an asynchat-style channel splitting
    // at the terminator): kept as part of the current question without being scanned again.
    void receive_unframed(std::string_view data);
    // The client will send nothing more (EOF or half-close); queued questions are still answered.
    void receive_eof();

    std::string_view pending_output() const {
        return std::string_view(output_).substr(output_sent_);
    }
    // n bytes of pending_output() were sent.
    void consume_output(std::size_t n);

    bool wants_input() const {
        return status_ == Status::open && !eof_ && !output_full();
    }
    // Nothing more to send and nothing more to read: close the connection (gracefully when
    // status() is too_long, so the error answer is not destroyed by a reset).
    bool done() const { return status_ != Status::open && pending_output().empty(); }
    Status status() const { return status_; }

    // A question has begun and is still incomplete (for --question-timeout).
    bool has_partial_question() const { return !input_.empty() && !output_full(); }
    // The incomplete question the client abandoned (status partial_at_eof), for the log.
    std::string_view unanswered_bytes() const { return input_; }
    std::uint64_t answered() const { return answered_; }

private:
    bool output_full() const { return output_.size() - output_sent_ >= limits_.max_pending; }
    // The rules every path shares (receive and receive_unframed): a question of this many bytes
    // with no '?' yet breaks max_question, which answers the error and ends the conversation.
    bool too_long(std::size_t question_bytes) const { return question_bytes > limits_.max_question; }
    void refuse_too_long();
    // Answers what it can from the front of data; returns how many bytes it used.
    std::size_t answer_questions(std::string_view data);
    void process_buffered_input();
    void settle_at_eof();

    // The table questions are answered from: fixed, or the live one as of generation_.
    const AphorismTable* table_;
    const LiveTable* live_ = nullptr;
    std::shared_ptr<const AphorismTable> held_;  // keeps a replaced live table alive for table_
    std::uint64_t generation_ = 0;
    SessionLimits limits_;
    std::string input_;   // unanswered bytes: a partial question, or questions held back by backpressure
    std::size_t scanned_ = 0;  // leading bytes of input_ already known to hold no '?'
    std::string output_;
    std::size_t output_sent_ = 0;
    std::uint64_t answered_ = 0;
    Status status_ = Status::open;
    bool eof_ = false;
};

}  // namespace zen
