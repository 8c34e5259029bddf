#include "servers/framework.hpp"

#include "net/io.hpp"
#include "net/signals.hpp"
#include "runtime/tracing.hpp"
#include "runtime/accepting.hpp"
#include "runtime/startup.hpp"
#include "runtime/stopping.hpp"

namespace zen {

// --- one connection on a transport ----------------------------------------------------------

TransportDriver::~TransportDriver() {
    if (transport_ != nullptr) transport_->loop().cancel(timer_);
}

void TransportDriver::start(loop::Transport& transport) {
    transport_ = &transport;
    connection_.emplace(context_, transport.peer(), now());
    // Paused as soon as a send leaves bytes over: answers then wait in the connection, which
    // sees them waiting (--send-timeout) and stops taking questions at --max-pending.
    transport.set_write_buffer_limits(0, 0);
    act();
}

void TransportDriver::act() {
    if (transport_->closed()) return;
    Connection& connection = *connection_;
    while (!writing_paused_) {
        const std::string_view out = connection.output();
        if (out.empty()) break;
        transport_->write(out);
        connection.sent(out.size(), now());
        if (transport_->closed()) return;  // the write failed: connection_lost() has told the connection
    }
    switch (connection.fate()) {
        case Connection::Fate::close:
            transport_->close();  // what is queued is sent first
            return;
        case Connection::Fate::drop:
            transport_->abort();
            return;
        case Connection::Fate::linger:
            if (!shut_down_writing_) {
                shut_down_writing_ = true;
                transport_->write_eof();
            }
            break;
        case Connection::Fate::keep:
            break;
    }
    if (connection.wants_read()) {
        transport_->resume_reading();
    } else {
        transport_->pause_reading();
    }
    if (connection.reads_without_waiting() && !reading_now_) {
        // Stopping: take in what the client has already sent (each read comes back through the
        // protocol's data_received), then tell the connection the socket is empty.
        reading_now_ = true;
        const bool eof = transport_->read_now();
        reading_now_ = false;
        if (transport_->closed()) return;
        if (!eof) connection.nothing_to_read(now());
        act();
        return;
    }
    // A timer already due earlier stays: when it fires, tick() finds nothing due yet and it is
    // armed again for the real deadline. Re-arming on every read would churn the loop's heap.
    const TimePoint deadline = connection.deadline();
    if (deadline >= armed_) return;
    transport_->loop().cancel(timer_);
    armed_ = deadline;
    timer_ = transport_->loop().call_at(deadline, [this] { on_deadline(); });
}

void TransportDriver::on_deadline() {
    armed_ = never;
    connection_->tick(now());
    act();
}

void TransportDriver::lost(std::string_view error) {
    transport_->loop().cancel(timer_);
    armed_ = never;
    if (!error.empty()) connection_->failed(error, now(), transport_->silence());
}

void TransportDriver::resume_writing() {
    writing_paused_ = false;
    act();
}

void TransportDriver::stop() {
    if (transport_->closed()) return;
    connection_->stop(now(), drain_deadline(context_));
    act();
}

// --- the server -----------------------------------------------------------------------------

int serve_protocols(Listener& listener, const ServerContext& context, loop::Server::ProtocolFactory make_protocol) {
    const HardStopWatchdog watchdog(context);
    loop::EventLoop loop;
    if (!loop.valid()) return startup_failed(context, "loop_error", "cannot create the event loop: " + errno_text(errno));
    loop::Server server(loop, listener, std::move(make_protocol),
                        [&context](const AcceptOutcome& outcome) { log_accept_problem(outcome, context); });
    if (!server.start()) return startup_failed(context, "loop_error", "cannot watch the listener: " + errno_text(errno));
    loop.add_watch(stop_fd(), EPOLLIN, [&](std::uint32_t) {
        loop.remove_watch(stop_fd());  // level-triggered and never drained: once is enough
        server.close();
        server.close_clients();
        loop.call_at(drain_deadline(context) + std::chrono::milliseconds(50),
                     [&server] { server.abort_clients("closed as the server stops"); });
    });
    loop.add_watch(quit_fd(), EPOLLIN, [&](std::uint32_t) {
        loop.remove_watch(quit_fd());
        server.close();
    });
    std::function<void()> watch_for_idleness = [&] {
        if (quit_requested() || stop_requested()) return;
        const TimePoint now = Clock::now();
        if (idle_exit_due(context, {listener.fd.get()}, now)) {
            quit_for_idleness(context);  // the quit pipe wakes us
            return;
        }
        loop.call_at(idle_exit_wake(context, now), watch_for_idleness);  // exact: no polling
    };
    if (context.options.exit_idle.count() > 0 && context.decides_idle_exit) watch_for_idleness();
    trace_thread_name(context, "event loop");
    if (!announce_serving(listener, context)) return 1;
    if (!loop.run()) {
        context.log.server(LogLevel::error, "loop_error", "The event loop failed: " + errno_text(errno));
        return 1;
    }
    return server.failed() ? 1 : 0;
}

}  // namespace zen
