// --arch chat: the Zen server as an asynchat channel (the book's srv_legacy2.py, on Python's
// legacy asyncore/asynchat), on zen's event-loop framework (src/loop/chat.hpp).
//
// Model: one thread runs the loop. The channel sets its terminator to '?'; the framework splits
// the incoming bytes there, handing over collect_incoming_data(piece) calls and then
// found_terminator(). The channel feeds those bytes to the shared Session
// (src/servers/transport_conversation.cpp) and push()es the answers, fire and forget; the
// transport corks the pushes made for one read into one send (16 pipelined questions cost one
// send, not sixteen). Because
// every answer is found per terminator, two questions in one packet get two answers — the bug
// of the book's version is gone, and the Session still applies every rule of the protocol
// (leading whitespace, --max-question counted across pieces, EOF in mid-question).
// Blocks: only in the loop's epoll_wait() — and in --delay (the lesson).
// Connection limit: none of its own; the fd limit.
// EAGAIN, EINTR, short writes, backpressure, EOF, EMFILE, stop: as --arch callbacks (the same
// framework and transport underneath).
#include "loop/chat.hpp"
#include "servers/framework_server.hpp"
#include "servers/transport_conversation.hpp"

namespace zen {

namespace {

class ZenChannel : public loop::AsyncChat {
public:
    explicit ZenChannel(const ServerContext& context)
        : conversation_(context, [this](std::string_view bytes) { push(bytes); }) {
        set_terminator("?");
    }

    void collect_incoming_data(std::string_view data) override { conversation_.data_received(data); }
    void found_terminator() override { conversation_.data_received(terminator()); }

    void connection_made(loop::Transport& transport) override {
        AsyncChat::connection_made(transport);
        conversation_.connection_made(transport);
    }
    void eof_received() override { conversation_.eof_received(); }
    void connection_lost(std::string_view error) override { conversation_.connection_lost(error); }
    void pause_writing() override { conversation_.pause_writing(); }
    void resume_writing() override { conversation_.resume_writing(); }

    TransportConversation& conversation() { return conversation_; }

private:
    TransportConversation conversation_;
};

class DrainableChannel : public DrainableProtocol {
public:
    explicit DrainableChannel(const ServerContext& context) : channel_(context) {}
    void connection_made(loop::Transport& transport) override { channel_.connection_made(transport); }
    void data_received(std::string_view data) override { channel_.data_received(data); }
    void eof_received() override { channel_.eof_received(); }
    void connection_lost(std::string_view error) override { channel_.connection_lost(error); }
    void pause_writing() override { channel_.pause_writing(); }
    void resume_writing() override { channel_.resume_writing(); }
    void drain() override { channel_.conversation().drain(); }

private:
    ZenChannel channel_;
};

}  // namespace

int serve_chat(Listener& listener, const ServerContext& context) {
    return serve_on_event_loop(listener, context, [&context] { return std::make_unique<DrainableChannel>(context); });
}

}  // namespace zen
