#include "loop/server.hpp"

#include <sys/epoll.h>

#include <chrono>
#include <vector>

namespace zen::loop {

namespace {

constexpr int accepts_per_turn = 64;
// After accept() ran out of descriptors: the listener is not watched for this long (never a spin).
constexpr std::chrono::milliseconds accept_pause{100};

}  // namespace

Server::Server(EventLoop& loop, const Listener& listener, ProtocolFactory make_protocol, AcceptProblem on_problem)
    : loop_(loop), listener_(listener), listener_fd_(listener.fd.get()), make_protocol_(std::move(make_protocol)), on_problem_(std::move(on_problem)) {}

bool Server::start() {
    accepting_ = true;
    watching_ = loop_.add_watch(listener_fd_, EPOLLIN, [this](std::uint32_t) { accept_clients(); });
    return watching_;
}

void Server::accept_clients() {
    for (int n = 0; n < accepts_per_turn; ++n) {
        AcceptOutcome accepted = accept_client(listener_);
        if (accepted.status == AcceptStatus::client_gone) continue;
        if (accepted.status == AcceptStatus::would_block) return;
        if (accepted.status != AcceptStatus::accepted) {
            on_problem_(accepted);
            if (accepted.status == AcceptStatus::failed) {
                failed_ = true;
                close();
                return;
            }
            loop_.remove_watch(listener_fd_);
            watching_ = false;
            loop_.call_later(accept_pause, [this] {
                if (accepting_ && !watching_) {
                    watching_ = loop_.add_watch(listener_fd_, EPOLLIN, [this](std::uint32_t) { accept_clients(); });
                }
            });
            return;
        }
        auto transport = std::make_unique<Transport>(loop_, std::move(accepted.client), make_protocol_());
        Transport* raw = transport.get();
        connections_.emplace(raw, std::move(transport));
        raw->set_on_closed([this, raw] { remove(raw); });
        raw->start();
    }
}

void Server::remove(Transport* transport) {
    // Not now: we may be inside one of its own callbacks.
    loop_.call_soon([this, transport] {
        connections_.erase(transport);
        stop_loop_if_done();
    });
}

void Server::close() {
    if (!accepting_) return;
    accepting_ = false;
    if (watching_) loop_.remove_watch(listener_fd_);
    watching_ = false;
    stop_loop_if_done();
}

void Server::close_clients() {
    std::vector<Transport*> open;
    for (const auto& [raw, transport] : connections_) open.push_back(raw);
    for (Transport* transport : open) {
        if (!transport->closed()) transport->protocol().server_closing(*transport);
    }
}

void Server::abort_clients(std::string_view error) {
    for (const auto& [raw, transport] : connections_) raw->abort(error);
}

void Server::stop_loop_if_done() {
    if (!accepting_ && connections_.empty()) loop_.stop();
}

}  // namespace zen::loop
