// The non-blocking conversation driver: one client's Session plus everything an event loop must
// keep for it (deadlines, held answers for --wait, the graceful close). The loop that owns it
// says when the socket is readable or writable and when its deadline comes; it says what it
// wants watched next. Used by --arch poll, epoll and reuseport; never blocks, except in
// --delay, which blocks on purpose (that is the lesson).
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "net/listener.hpp"
#include "servers/answer_pacer.hpp"
#include "servers/server.hpp"

namespace zen {

class EventConversation {
public:
    EventConversation(AcceptedClient client, const ServerContext& context, Clock::time_point now);
    ~EventConversation();
    EventConversation(const EventConversation&) = delete;
    EventConversation& operator=(const EventConversation&) = delete;

    int fd() const { return fd_.get(); }

    // Reads what the socket holds, at most read_budget reads (so one busy client cannot starve
    // the others), answering and writing as it goes. Returns true when the budget ran out
    // before the socket said EAGAIN: more may be waiting.
    bool handle_readable(std::span<char> buffer, Clock::time_point now, int read_budget = 4);
    // The loop saw the peer hang up (EPOLLRDHUP, EPOLLHUP, EPOLLERR): read on to EOF, since a
    // short read no longer means another event will come.
    void note_hang_up() { hung_up_ = true; }
    // The loop saw new bytes arrive (an edge): reading may make progress again, even if the last
    // read emptied the socket (the event may come while backpressure holds reading off).
    void note_readable() { read_blocked_ = false; }
    void handle_writable(Clock::time_point now);
    // Acts on whatever deadline has passed: a timeout, the end of a --wait, a linger, the drain.
    void handle_deadline(Clock::time_point now);
    // The server is stopping: answer what has already arrived, send it, close by the deadline.
    void begin_drain(std::span<char> buffer, Clock::time_point now);

    // For level-triggered loops: watch for readability / writability.
    bool wants_read() const;
    bool wants_write() const { return phase_ == Phase::conversing && send_blocked_; }
    // For edge-triggered loops: reading may make progress now (no EAGAIN seen since last read).
    bool should_read_now() const { return wants_read() && !read_blocked_; }
    bool finished() const { return phase_ == Phase::closed; }
    Clock::time_point next_deadline() const;

private:
    enum class Phase { conversing, lingering, closed };

    void feed(std::string_view bytes, Clock::time_point now);
    void feed_eof(Clock::time_point now);
    void flush(Clock::time_point now);
    void after_progress(Clock::time_point now);
    void end_conversation(Clock::time_point now);
    void start_linger(Clock::time_point now, Clock::time_point limit);
    void close_now();
    std::string_view releasable(Clock::time_point now);

    const ServerContext& context_;
    Fd fd_;
    ClientIntake intake_;
    std::string peer_;
    Session session_;
    Phase phase_ = Phase::conversing;
    bool read_blocked_ = false;   // the last read said EAGAIN, or emptied the socket
    bool hung_up_ = false;        // note_hang_up()
    bool send_blocked_ = false;   // the last send said EAGAIN with bytes left
    bool draining_ = false;
    bool counted_ = false;        // counted as open in the tracker
    Clock::time_point last_activity_;
    Clock::time_point question_deadline_ = Clock::time_point::max();
    Clock::time_point linger_deadline_ = Clock::time_point::max();
    AnswerPacer pacer_;
    std::uint64_t sent_total_ = 0;
};

}  // namespace zen
