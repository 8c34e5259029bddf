// The Zen conversation behind the event-loop framework's interfaces (src/loop/): what both
// --arch callbacks (Protocol) and --arch chat (AsyncChat) delegate to, so that each of those
// files shows only its interface. It owns the Session, the timeouts (as loop timers), --delay and
// --wait, backpressure (pausing the transport's reading) and the graceful close.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "loop/transport.hpp"
#include "servers/answer_pacer.hpp"
#include "servers/server.hpp"

namespace zen {

class TransportConversation {
public:
    using Send = std::function<void(std::string_view)>;

    // send puts bytes on the wire: transport.write() for callbacks, push() for chat.
    TransportConversation(const ServerContext& context, Send send);
    ~TransportConversation();
    TransportConversation(const TransportConversation&) = delete;
    TransportConversation& operator=(const TransportConversation&) = delete;

    void connection_made(loop::Transport& transport);
    void data_received(std::string_view data);
    void eof_received();
    void connection_lost(std::string_view error);
    void pause_writing();
    void resume_writing();
    // The server is stopping: answer what has arrived, then close by the drain deadline.
    void drain();

private:
    void pump();
    void end_conversation();
    void rearm_deadline();
    void on_deadline();
    void close_gracefully(Clock::time_point limit);

    const ServerContext& context_;
    Send send_;
    loop::Transport* transport_ = nullptr;
    std::optional<ClientIntake> intake_;  // from connection_made on
    std::string peer_;
    Session session_;
    AnswerPacer pacer_;
    std::uint64_t sent_total_ = 0;
    bool writing_paused_ = false;
    bool draining_ = false;
    bool ended_ = false;      // its end was logged; what follows is the graceful close
    bool lingering_ = false;  // our side is shut; discarding the client's bytes until it closes
    bool counted_ = false;
    Clock::time_point last_activity_;
    Clock::time_point question_deadline_ = Clock::time_point::max();
    Clock::time_point linger_deadline_ = Clock::time_point::max();
    loop::TimerHandle timer_;
    Clock::time_point armed_ = Clock::time_point::max();
};

}  // namespace zen
