// What --arch callbacks and --arch chat share on zen's event-loop framework (src/loop/): the
// server's lifecycle around a loop::Server, and the small driver that turns a Connection's asks
// into transport calls, so that callbacks.cpp and chat.cpp hold only their protocol.
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "conn/connection.hpp"
#include "loop/server.hpp"
#include "loop/transport.hpp"
#include "runtime/options.hpp"

namespace zen {

// Accepts with a loop::Server until a stop or quit. SIGTERM/SIGINT: close_clients() (each
// protocol answers what has arrived and closes), and abort_clients() past the drain deadline.
// SIGQUIT and --exit-idle: close() and let conversations finish.
int serve_protocols(Listener& listener, const ServerContext& context, loop::Server::ProtocolFactory make_protocol);

// One connection on a transport: a protocol feeds connection() from its callbacks, then calls
// act(), which hands the answers to the transport (while it is not paused), pauses or resumes
// reading, ends the transport when the connection is over, and keeps one loop timer at the
// connection's deadline.
class TransportDriver {
public:
    explicit TransportDriver(const ServerContext& context) : context_(context) {}
    ~TransportDriver();

    void start(loop::Transport& transport);
    Connection& connection() { return *connection_; }
    TimePoint now() const { return transport_->loop().now(); }
    void act();
    void lost(std::string_view error);
    void pause_writing() { writing_paused_ = true; }
    void resume_writing();
    // The server is stopping: read what has arrived, answer it, close by the drain deadline.
    void stop();

private:
    void on_deadline();

    const ServerContext& context_;
    loop::Transport* transport_ = nullptr;
    std::optional<Connection> connection_;  // from start() on
    loop::TimerHandle timer_;
    TimePoint armed_ = never;
    bool writing_paused_ = false;
    bool shut_down_writing_ = false;
    bool reading_now_ = false;  // inside the transport's read_now(), for a stop
};

// The callbacks that a Zen protocol answers the same way whatever its interface (a
// loop::Protocol, an AsyncChat): each goes to its connection through the TransportDriver. A
// protocol adds only what makes it itself: connection_made() and how it takes the bytes.
template <class Interface>
class ConnectionProtocol : public Interface {
public:
    explicit ConnectionProtocol(const ServerContext& context) : conversation_(context) {}

    void eof_received() override {
        conversation_.connection().received_eof(conversation_.now());
        conversation_.act();
    }
    void connection_lost(std::string_view error) override { conversation_.lost(error); }
    void pause_writing() override { conversation_.pause_writing(); }
    void resume_writing() override { conversation_.resume_writing(); }
    void server_closing(loop::Transport&) override { conversation_.stop(); }

protected:
    TransportDriver conversation_;
};

}  // namespace zen
