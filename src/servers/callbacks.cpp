// --arch callbacks: the Zen server as an asyncio.Protocol (the book's srv_asyncio1.py), on zen's
// own small event-loop framework (src/loop/: event_loop, transport, server).
//
// Model: one thread runs the loop. For each connection the framework's server creates a
// ZenProtocol and calls it back: connection_made(transport), data_received(bytes),
// eof_received(), connection_lost(error); the answers go out through transport.write(). The
// protocol never touches a socket. What it does with the bytes is its Connection's business
// (src/conn/connection.hpp), which TransportDriver (servers/framework.cpp) turns into transport
// calls and one loop timer.
// Blocks: only in the loop's epoll_wait() (level-triggered; one read per ready client per turn,
// so clients take turns) — and in --delay, which stalls everyone (the lesson).
// Connection limit: none of its own; the fd limit.
// EAGAIN: ends a read or a write; the transport queues what the socket did not take and asks for
// EPOLLOUT only then. EINTR: retried. Short writes: queued, and the transport calls
// pause_writing() until its queue is empty; answers wait in the connection meanwhile, which
// stops taking questions at --max-pending. EOF: eof_received(); every answer is still sent.
// EMFILE: the listener is unwatched for 100 ms.
// Stop: SIGTERM/SIGINT end accepting; the server calls server_closing() on each protocol, which
// answers what has arrived and closes by --drain-timeout. SIGQUIT and --exit-idle end accepting
// and let conversations finish.
#include "servers/framework.hpp"
#include "servers/registry.hpp"

namespace zen {

namespace {

class ZenProtocol : public ConnectionProtocol<loop::Protocol> {
public:
    using ConnectionProtocol::ConnectionProtocol;

    void connection_made(loop::Transport& transport) override { conversation_.start(transport); }

    void data_received(std::string_view data) override {
        conversation_.connection().received(data, conversation_.now());
        conversation_.act();  // the answers go out with transport.write()
    }
    // eof_received, connection_lost, pause/resume_writing, server_closing: ConnectionProtocol's.
};

}  // namespace

int serve_callbacks(Listener& listener, const ServerContext& context) {
    return serve_protocols(listener, context, [&context] { return std::make_unique<ZenProtocol>(context); });
}

}  // namespace zen
