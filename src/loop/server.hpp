// A stream server on the event loop, in the shape of asyncio's loop.create_server(): it accepts on
// a listening socket and gives every connection a Transport and a Protocol of its own, made by
// the factory. close() stops accepting; close_clients() asks every protocol to finish
// (Protocol::server_closing); abort_clients() cuts them. The loop stops once the server is
// closed and its last connection gone. One loop, one thread.
#pragma once

#include <functional>
#include <memory>
#include <unordered_map>

#include "loop/event_loop.hpp"
#include "loop/transport.hpp"
#include "net/listener.hpp"

namespace zen::loop {

class Server {
public:
    using ProtocolFactory = std::function<std::unique_ptr<Protocol>()>;
    // An accept() that brought no client; a `failed` one has closed the server.
    using AcceptProblem = std::function<void(const AcceptOutcome&)>;

    // The listener stays the caller's; it must outlive the server.
    Server(EventLoop& loop, const Listener& listener, ProtocolFactory make_protocol, AcceptProblem on_problem);
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Starts accepting; false if the listener cannot be watched.
    bool start();
    void close();
    void close_clients();
    void abort_clients(std::string_view error);
    bool failed() const { return failed_; }

private:
    void accept_clients();
    void remove(Transport* transport);
    void stop_loop_if_done();

    EventLoop& loop_;
    const Listener& listener_;
    int listener_fd_;
    ProtocolFactory make_protocol_;
    AcceptProblem on_problem_;
    std::unordered_map<Transport*, std::unique_ptr<Transport>> connections_;
    bool accepting_ = false;
    bool watching_ = false;
    bool failed_ = false;
};

}  // namespace zen::loop
