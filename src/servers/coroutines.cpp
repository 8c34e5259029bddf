// --arch coroutines: C++20 coroutines on standalone Asio (the book's srv_asyncio2.py, where each
// client is a coroutine that reads with `await` and looks like blocking code).
//
// Model: one thread runs an asio::io_context. An accept coroutine takes each connection and
// co_spawns a conversation coroutine for it; the conversation reads, answers and writes as the
// blocking driver does, but every co_await yields the thread to the other clients. The rules are
// its Connection's (src/conn/connection.hpp). Beside each conversation runs a watchdog coroutine
// that sleeps until the connection's deadline: when it passes, it cancels the socket's pending
// operation, and the conversation asks its connection what the deadline meant (a timeout, a
// --wait answer due, the end of a linger or of the drain). (Not `talk() || watchdog()`: Asio's parallel groups have had
// use-after-free bugs in their cancellation handlers, asio issue 1332; a watchdog of its own
// needs none of that machinery.) Errors are values (as_tuple), never exceptions on the
// hot path; the accept coroutine is spawned with a completion handler that logs and stops the
// server if it ever ends by an exception, so an accept error cannot silently stop service.
// Blocks: only in io_context::run() (epoll inside Asio) — and in --delay (the lesson).
// Connection limit: none of its own; the fd limit. Memory per client: its coroutine frames, the
// socket and timer (about 3 KiB in all). No read buffer of its own: a conversation waits for its
// socket to be readable, then reads into the server's one buffer and hands the bytes to its
// session before it yields again.
// EAGAIN, EINTR: inside Asio. Short writes: async_write completes them. EOF: the session
// answers what came before it. Backpressure: a conversation writes all its answers before it
// reads again, so a client that never reads stops being read. EMFILE: the accept coroutine
// waits 100 ms on a timer, logged once a second.
// Stop: SIGTERM/SIGINT close the acceptor; each conversation's pending read is cancelled, it
// answers what has already arrived and closes by --drain-timeout. SIGQUIT and --exit-idle close
// the acceptor and let conversations finish.
#include <asio.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <array>
#include <cstring>
#include <list>
#include <memory>
#include <system_error>

#include "conn/connection.hpp"
#include "net/io.hpp"
#include "net/signals.hpp"
#include "runtime/tracing.hpp"
#include "runtime/accepting.hpp"
#include "runtime/startup.hpp"
#include "runtime/stopping.hpp"
#include "servers/registry.hpp"

namespace zen {

namespace {

using asio::awaitable;
using asio::use_awaitable;
constexpr auto as_values = asio::experimental::as_tuple(use_awaitable);

struct Conversation {
    explicit Conversation(asio::ip::tcp::socket s) : socket(std::move(s)), timer(socket.get_executor()) {}

    // The watchdog sleeps until the deadline; an earlier one wakes it to sleep less.
    void move_deadline(TimePoint to) {
        const bool earlier = to < deadline;
        deadline = to;
        if (earlier) timer.cancel();
    }

    asio::ip::tcp::socket socket;
    asio::steady_timer timer;  // the watchdog's
    TimePoint deadline = never;
    bool stopping = false;  // the server is stopping: its pending operation was cancelled
    bool finished = false;  // the conversation is over: the watchdog ends too
    std::list<std::weak_ptr<Conversation>>::iterator entry;  // in the server's live_ list
};

class CoroutineServer {
public:
    // Throws std::system_error when a descriptor cannot be had (Asio's epoll, the pipes' copies).
    CoroutineServer(Listener& listener, const ServerContext& context)
        : context_(context), listener_(listener), acceptor_(io_),
          stop_pipe_(io_, copy_of(stop_fd())), quit_pipe_(io_, copy_of(quit_fd())) {
        const auto protocol = listener.bound.family() == AF_INET6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4();
        acceptor_.assign(protocol, listener.fd.release());
    }

    int run();

private:
    awaitable<void> accept_loop();
    awaitable<void> converse(std::shared_ptr<Conversation> conversation);
    awaitable<void> talk(Conversation& conversation, Connection& connection);
    // Runs until the conversation finishes; cancels its socket's operations whenever its deadline passes.
    static awaitable<void> watchdog(std::shared_ptr<Conversation> conversation);
    awaitable<void> watch_stop();
    awaitable<void> watch_quit();
    awaitable<void> watch_idleness();
    void end_accepting() {
        asio::error_code ignored;
        acceptor_.close(ignored);
    }
    static int copy_of(int fd) {
        const int copy = ::dup(fd);
        if (copy < 0) throw std::system_error(errno, std::generic_category(), "dup");
        return copy;
    }

    const ServerContext& context_;
    const Listener& listener_;  // its descriptor is the acceptor's; options_to_set() per client
    // One thread runs it and nothing else touches it: no locks in Asio's scheduler and reactor
    // (3,404 -> 2,908 instructions per answer under callgrind at 50 clients).
    asio::io_context io_{ASIO_CONCURRENCY_HINT_UNSAFE};
    asio::ip::tcp::acceptor acceptor_;
    asio::posix::stream_descriptor stop_pipe_;
    asio::posix::stream_descriptor quit_pipe_;
    std::list<std::weak_ptr<Conversation>> live_;
    int code_ = 0;
    // Every read lands here; its bytes are in a connection before the reader yields (one thread).
    std::array<char, 16 * 1024> buffer_{};
};

awaitable<void> CoroutineServer::accept_loop() {
    for (;;) {
        auto [error, socket] = co_await acceptor_.async_accept(as_values);
        if (!error) {
            if (const ClientSocketOptions* set = options_to_set(listener_)) set_client_options(socket.native_handle(), *set);
            auto conversation = std::make_shared<Conversation>(std::move(socket));
            conversation->entry = live_.insert(live_.end(), conversation);
            asio::co_spawn(io_, converse(conversation), asio::detached);  // converse catches nothing: it throws nothing
            continue;
        }
        if (error == asio::error::operation_aborted || !acceptor_.is_open()) co_return;  // stopping
        AcceptOutcome outcome{AcceptStatus::failed, {}, error.value()};
        if (error == asio::error::no_descriptors || error.value() == ENFILE || error == asio::error::no_buffer_space ||
            error == asio::error::no_memory) {
            outcome.status = AcceptStatus::out_of_fds;
        } else if (error == asio::error::connection_aborted || error.value() == EPROTO) {
            continue;
        }
        log_accept_problem(outcome, context_);
        if (outcome.status == AcceptStatus::failed) {
            code_ = 1;
            co_return;
        }
        asio::steady_timer pause(io_, accept_pause);
        co_await pause.async_wait(as_values);
    }
}

awaitable<void> CoroutineServer::converse(std::shared_ptr<Conversation> conversation) {
    asio::error_code ignored;
    const auto endpoint = conversation->socket.remote_endpoint(ignored);
    SocketAddress address;
    const std::size_t size = std::min<std::size_t>(endpoint.size(), sizeof address.storage);
    std::memcpy(&address.storage, endpoint.data(), size);
    address.length = static_cast<socklen_t>(size);
    {
        Connection connection(context_, address, Clock::now());
        if (connection.fate() == Connection::Fate::keep) {
            conversation->socket.non_blocking(true, ignored);  // reads are tried first, and waited for only on EAGAIN
            asio::co_spawn(io_, watchdog(conversation), asio::detached);
            co_await talk(*conversation, connection);
        }
        conversation->finished = true;
        conversation->timer.cancel();
        conversation->socket.close(ignored);
    }  // the connection is counted closed before the server may look for idleness
    live_.erase(conversation->entry);  // its weak_ptr would keep the whole allocation alive
}

awaitable<void> CoroutineServer::watchdog(std::shared_ptr<Conversation> conversation) {
    while (!conversation->finished) {
        conversation->timer.expires_at(conversation->deadline);
        co_await conversation->timer.async_wait(as_values);  // cancelled when the deadline moves earlier
        if (conversation->finished) co_return;
        if (Clock::now() >= conversation->deadline) {
            conversation->deadline = never;  // until the conversation sets its next one
            asio::error_code ignored;
            conversation->socket.cancel(ignored);  // the pending read or write returns at once
        }
    }
}

awaitable<void> CoroutineServer::talk(Conversation& conversation, Connection& connection) {
    auto& socket = conversation.socket;
    bool shut_down_writing = false;
    for (;;) {
        TimePoint now = Clock::now();
        if (conversation.stopping && !connection.stopping()) connection.stop(now, drain_deadline(context_));
        if (now >= connection.deadline()) connection.tick(now);
        const Connection::Fate fate = connection.fate();
        if (fate == Connection::Fate::close || fate == Connection::Fate::drop) co_return;
        if (fate == Connection::Fate::linger && !shut_down_writing) {
            asio::error_code ignored;
            socket.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
            shut_down_writing = true;
        }
        conversation.move_deadline(connection.deadline());

        if (const std::string_view out = connection.output(); !out.empty()) {
            auto [error, sent] = co_await asio::async_write(socket, asio::buffer(out), as_values);
            now = Clock::now();
            if (sent > 0) connection.sent(sent, now);
            // Cancelled: a deadline passed or the server stops; the loop's top says which.
            if (error && error != asio::error::operation_aborted) {
                report_socket_error(connection, socket.native_handle(), error.value(), now);
            }
            continue;
        }
        if (!connection.wants_read()) {
            // Nothing to send yet, nothing to read: answers held by --wait until their time.
            asio::steady_timer wait(socket.get_executor(), connection.deadline());
            co_await wait.async_wait(as_values);
            continue;
        }
        asio::error_code error;
        const std::size_t n = socket.read_some(asio::buffer(buffer_), error);
        if (error == asio::error::would_block) {
            if (connection.reads_without_waiting()) {
                connection.nothing_to_read(now);
                continue;
            }
            co_await socket.async_wait(asio::ip::tcp::socket::wait_read, as_values);
            continue;  // readable, or cancelled: the loop's top reads or sees why
        }
        now = Clock::now();
        if (!error) {
            connection.received({buffer_.data(), n}, now);
        } else if (error == asio::error::eof) {
            connection.received_eof(now);
        } else {
            report_socket_error(connection, socket.native_handle(), error.value(), now);
        }
    }
}

awaitable<void> CoroutineServer::watch_stop() {
    auto [error] = co_await stop_pipe_.async_wait(asio::posix::stream_descriptor::wait_read, as_values);
    if (error) co_return;
    end_accepting();
    for (const auto& weak : live_) {
        if (auto conversation = weak.lock()) {
            conversation->stopping = true;
            asio::error_code ignored;
            conversation->socket.cancel(ignored);  // its pending read returns; it drains
        }
    }
    quit_pipe_.cancel();
}

awaitable<void> CoroutineServer::watch_quit() {
    auto [error] = co_await quit_pipe_.async_wait(asio::posix::stream_descriptor::wait_read, as_values);
    if (error) co_return;
    end_accepting();
    stop_pipe_.cancel();  // conversations finish; a later SIGTERM still stops hard by the watchdog
}

awaitable<void> CoroutineServer::watch_idleness() {
    asio::steady_timer tick(io_);
    while (acceptor_.is_open()) {
        const TimePoint now = Clock::now();
        if (idle_exit_due(context_, {acceptor_.native_handle()}, now)) {
            quit_for_idleness(context_);
            co_return;
        }
        tick.expires_at(idle_exit_wake(context_, now));  // exact: no polling (loop/idle_exit.hpp)
        co_await tick.async_wait(as_values);
    }
}

int CoroutineServer::run() {
    asio::co_spawn(io_, accept_loop(), [this](std::exception_ptr failure) {
        if (!failure) return;
        try {
            std::rethrow_exception(failure);
        } catch (const std::exception& e) {
            context_.log.server(LogLevel::error, "accept_error", std::string("The accept loop failed: ") + e.what());
        }
        code_ = 1;
        io_.stop();
    });
    asio::co_spawn(io_, watch_stop(), asio::detached);
    asio::co_spawn(io_, watch_quit(), asio::detached);
    if (context_.options.exit_idle.count() > 0) asio::co_spawn(io_, watch_idleness(), asio::detached);
    // Ends when the acceptor is closed, every conversation is over and the watchers are done.
    io_.run();
    return code_;
}

}  // namespace

int serve_coroutines(Listener& listener, const ServerContext& context) {
    const HardStopWatchdog watchdog(context);
    try {
        CoroutineServer server(listener, context);
        trace_thread_name(context, "event loop");
        if (!announce_serving(listener, context)) return 1;
        return server.run();
    } catch (const std::system_error& e) {  // out of descriptors, say: an error, never an abort
        return startup_failed(context, "asio_error", std::string("cannot serve with Asio: ") + e.what());
    }
}

}  // namespace zen
