#include "servers/framework_server.hpp"

#include <sys/epoll.h>

#include <unordered_map>

#include "net/signals.hpp"
#include "servers/blocking.hpp"

namespace zen {

namespace {

class FrameworkServer {
public:
    FrameworkServer(Listener& listener, const ServerContext& context, const ProtocolFactory& make_protocol)
        : listener_(listener), context_(context), make_protocol_(make_protocol) {}

    int run();

private:
    void accept_clients();
    void end_accepting();
    void remove(loop::Transport* transport);
    void finish_if_empty() {
        if (!accepting_ && connections_.empty()) loop_.stop();
    }
    void watch_for_idleness();

    Listener& listener_;
    const ServerContext& context_;
    const ProtocolFactory& make_protocol_;
    loop::EventLoop loop_;
    std::unordered_map<loop::Transport*, std::unique_ptr<loop::Transport>> connections_;
    bool accepting_ = true;
    bool listener_watched_ = false;
    int code_ = 0;
};

void FrameworkServer::remove(loop::Transport* transport) {
    // Not now: we may be inside one of its own callbacks.
    loop_.call_soon([this, transport] {
        connections_.erase(transport);
        finish_if_empty();
    });
}

void FrameworkServer::accept_clients() {
    for (int n = 0; n < 64; ++n) {
        AcceptOutcome accepted = accept_client(listener_.fd.get());
        if (accepted.status == AcceptStatus::client_gone) continue;
        if (accepted.status == AcceptStatus::would_block) return;
        if (accepted.status != AcceptStatus::accepted) {
            log_accept_problem(accepted, context_);
            if (accepted.status == AcceptStatus::failed) {
                code_ = 1;
                end_accepting();
                return;
            }
            // Out of descriptors: stop watching the listener for a while, never spin on it.
            loop_.remove_watch(listener_.fd.get());
            listener_watched_ = false;
            loop_.call_later(accept_pause, [this] {
                if (accepting_ && !listener_watched_) {
                    listener_watched_ = loop_.add_watch(listener_.fd.get(), EPOLLIN, [this](std::uint32_t) { accept_clients(); });
                }
            });
            return;
        }
        auto transport = std::make_unique<loop::Transport>(loop_, std::move(accepted.client), make_protocol_());
        loop::Transport* raw = transport.get();
        connections_.emplace(raw, std::move(transport));
        raw->set_on_closed([this, raw] { remove(raw); });
        raw->start();
    }
}

void FrameworkServer::end_accepting() {
    if (!accepting_) return;
    accepting_ = false;
    if (listener_watched_) loop_.remove_watch(listener_.fd.get());
    listener_watched_ = false;
    finish_if_empty();
}

void FrameworkServer::watch_for_idleness() {
    loop_.call_later(std::chrono::milliseconds(100), [this] {
        if (!accepting_) return;
        if (idle_exit_due(context_, {listener_.fd.get()})) {
            quit_for_idleness(context_);  // the quit pipe wakes us
            return;
        }
        watch_for_idleness();
    });
}

int FrameworkServer::run() {
    if (!loop_.valid()) {
        context_.log.server(LogLevel::error, "loop_error", "Cannot create the event loop: " + errno_text(errno));
        return 1;
    }
    listener_watched_ = loop_.add_watch(listener_.fd.get(), EPOLLIN, [this](std::uint32_t) { accept_clients(); });
    loop_.add_watch(stop_fd(), EPOLLIN, [this](std::uint32_t) {
        loop_.remove_watch(stop_fd());  // level-triggered and never drained: once is enough
        end_accepting();
        std::vector<loop::Transport*> open;
        for (const auto& [raw, transport] : connections_) open.push_back(raw);
        for (loop::Transport* transport : open) {
            if (!transport->closed()) static_cast<DrainableProtocol&>(transport->protocol()).drain();
        }
        loop_.call_at(drain_deadline(context_) + std::chrono::milliseconds(50), [this] {
            for (const auto& [raw, transport] : connections_) raw->abort("closed as the server stops");
        });
    });
    loop_.add_watch(quit_fd(), EPOLLIN, [this](std::uint32_t) {
        loop_.remove_watch(quit_fd());
        end_accepting();
    });
    if (context_.options.exit_idle.count() > 0 && context_.decides_idle_exit) watch_for_idleness();
    if (!loop_.run()) {
        context_.log.server(LogLevel::error, "loop_error", "The event loop failed: " + errno_text(errno));
        return 1;
    }
    return code_;
}

}  // namespace

int serve_on_event_loop(Listener& listener, const ServerContext& context, const ProtocolFactory& make_protocol) {
    const HardStopWatchdog watchdog(context);
    FrameworkServer server(listener, context, make_protocol);
    return server.run();
}

}  // namespace zen
