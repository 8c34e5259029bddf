// --arch chat: the Zen server as an asynchat channel (the book's srv_legacy2.py, on Python's
// legacy asyncore/asynchat), on zen's event-loop framework (src/loop/chat.hpp).
//
// Model: one thread runs the loop. The channel sets its terminator to '?'; the framework splits
// the incoming bytes there, handing over collect_incoming_data(piece) calls and then
// found_terminator(). The framing is done once, by the framework: the pieces reach the session
// as bytes known to hold no '?' (Connection::received_unframed), which it keeps without
// scanning them again, and the terminator completes the question. The answers go to the
// transport as push() sends them, fire and forget; the transport corks the pushes made for one read into one send (16 pipelined
// questions cost one send, not sixteen). Because every answer is found per terminator, two
// questions in one packet get two answers — the bug of the book's version is gone, and the
// session still applies every rule of the protocol (leading whitespace, --max-question counted
// across pieces, EOF in mid-question).
// Blocks: only in the loop's epoll_wait() — and in --delay (the lesson).
// Connection limit: none of its own; the fd limit.
// EAGAIN, EINTR, short writes, backpressure, EOF, EMFILE, stop: as --arch callbacks (the same
// framework and transport underneath, and the same TransportDriver, servers/framework.cpp).
#include "loop/chat.hpp"
#include "servers/framework.hpp"
#include "servers/registry.hpp"

namespace zen {

namespace {

class ZenChannel : public ConnectionProtocol<loop::AsyncChat> {
public:
    explicit ZenChannel(const ServerContext& context) : ConnectionProtocol(context) { set_terminator("?"); }

    void connection_made(loop::Transport& transport) override {
        AsyncChat::connection_made(transport);
        conversation_.start(transport);
    }

    void collect_incoming_data(std::string_view data) override {
        conversation_.connection().received_unframed(data, conversation_.now());
        conversation_.act();  // a question too long, a PROXY header done: there may be something to do
    }

    void found_terminator() override {
        conversation_.connection().received(terminator(), conversation_.now());
        conversation_.act();  // the answer goes to the transport, as push() would send it
    }
    // eof_received, connection_lost, pause/resume_writing, server_closing: ConnectionProtocol's.
};

}  // namespace

int serve_chat(Listener& listener, const ServerContext& context) {
    return serve_protocols(listener, context, [&context] { return std::make_unique<ZenChannel>(context); });
}

}  // namespace zen
