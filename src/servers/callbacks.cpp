// --arch callbacks: the Zen server as an asyncio.Protocol (the book's srv_asyncio1.py), on zen's
// own small event-loop framework (src/loop/event_loop.hpp, transport.hpp).
//
// Model: one thread runs the loop. For each connection the framework creates a ZenProtocol and
// calls it back: connection_made(transport), data_received(bytes), eof_received(),
// connection_lost(error); the protocol answers with transport.write(). The protocol never
// touches a socket. What it does with the bytes is the shared Session, driven by
// TransportConversation (src/servers/transport_conversation.cpp).
// Blocks: only in the loop's epoll_wait() (level-triggered; one read per ready client per turn,
// so clients take turns) — and in --delay, which stalls everyone (the lesson).
// Connection limit: none of its own; the fd limit.
// EAGAIN: ends a read or a write; the transport queues what the socket did not take and asks for
// EPOLLOUT only then. EINTR: retried. Short writes: queued. Backpressure: a transport queue over
// --max-pending calls pause_writing(), and the protocol stops reading until resume_writing().
// EOF: eof_received(); every answer is still sent. EMFILE: the listener is unwatched for 100 ms.
// Stop: SIGTERM/SIGINT end accepting; each protocol answers what has arrived and closes by
// --drain-timeout. SIGQUIT and --exit-idle end accepting and let conversations finish.
#include "servers/framework_server.hpp"
#include "servers/transport_conversation.hpp"

namespace zen {

namespace {

class ZenProtocol : public DrainableProtocol {
public:
    explicit ZenProtocol(const ServerContext& context)
        : conversation_(context, [this](std::string_view bytes) { transport_->write(bytes); }) {}

    void connection_made(loop::Transport& transport) override {
        transport_ = &transport;
        conversation_.connection_made(transport);
    }
    void data_received(std::string_view data) override { conversation_.data_received(data); }
    void eof_received() override { conversation_.eof_received(); }
    void connection_lost(std::string_view error) override { conversation_.connection_lost(error); }
    void pause_writing() override { conversation_.pause_writing(); }
    void resume_writing() override { conversation_.resume_writing(); }
    void drain() override { conversation_.drain(); }

private:
    loop::Transport* transport_ = nullptr;
    TransportConversation conversation_;
};

}  // namespace

int serve_callbacks(Listener& listener, const ServerContext& context) {
    return serve_on_event_loop(listener, context, [&context] { return std::make_unique<ZenProtocol>(context); });
}

}  // namespace zen
