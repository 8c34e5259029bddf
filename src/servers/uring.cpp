// --arch uring: a completion-based loop on io_uring (liburing) — beyond the book.
//
// Technique: instead of asking "which sockets are ready?" and then calling recv()/send(), the
// loop submits the operations themselves and is told when they are done; every submission of a
// loop turn and every completion cross in one system call (io_uring_submit_and_wait_timeout).
// Kernel features, and what happens without them (docs/architectures/uring.md):
//   - provided buffer rings (io_uring_register_buf_ring), async cancel by fd: Linux 5.19, needed;
//     without them the server says so and exits 1;
//   - multishot accept (5.19): one submission accepts every client; -EINVAL: one at a time;
//   - multishot receive (6.0): one submission per connection feeds it every read, each into a
//     buffer the kernel takes from the ring only when data arrives (an idle client holds none);
//     -EINVAL: a one-shot receive, submitted again after each completion;
//   - SINGLE_ISSUER | DEFER_TASKRUN (6.1): completion work runs when the loop asks for it;
//     older kernels get what they support.
// Model: one thread. Each client has at most one receive and one send in flight, together. A
// send reads from a copy of the answers in a send buffer of the server's (the session's output
// may move as new answers are appended), and only one send at a time keeps the bytes in order.
// The rules are the client's Connection's (src/conn/connection.hpp); this file decides, after
// every completion and deadline, which operations the connection's asks call for (advance()).
// Completions carry kind + slot + generation, never a raw fd: a late completion for a closed
// client is recognised and dropped (its buffer still goes back to the ring).
// Blocks: only in io_uring_submit_and_wait_timeout() — and in --delay (the lesson). No other
// system call on the serving path but one getpeername() per accepted client (io_uring has no
// such operation); shutdowns and closes go through the ring, and TCP_NODELAY, keepalive and
// TCP_USER_TIMEOUT are set once, on the listener, whose accepted sockets inherit them (a listener
// passed without them costs setsockopt()s for each client it had queued: see
// Listener::queued_without_options).
// Connection limit: none of its own; the fd limit.
// EAGAIN/EINTR: the kernel's business. Short sends: the rest is sent again. EOF: the session
// answers what came before it. Backpressure: when the connection stops reading, the receive in
// flight is cancelled; it is submitted again when reading resumes. -ENOBUFS (the buffer ring ran
// dry): the receive ends and waits in a retry list; from the next loop turn on, after this
// turn's completions have returned their buffers, half a ring's worth are submitted again per
// turn, oldest first. EMFILE: accepting pauses 100 ms, logged once a
// second. A connection that ends while an operation is in flight (a timeout, the drain's end)
// has its operations cancelled; its slot is freed and its fd closed when the last completes.
// Stop: SIGTERM/SIGINT end accepting; each receive in flight is cancelled, what has arrived is
// read with MSG_DONTWAIT receives (still through the ring), answered and sent, then each client
// is closed by --drain-timeout. SIGQUIT and --exit-idle end accepting and let conversations
// finish.
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <cstring>
#include <memory>
#include <vector>

#include "loop/slot_table.hpp"
#include "loop/timer_queue.hpp"
#include "net/io.hpp"
#include "net/signals.hpp"
#include "conn/connection.hpp"
#include "runtime/tracing.hpp"
#include "runtime/accepting.hpp"
#include "runtime/startup.hpp"
#include "runtime/stopping.hpp"
#include "servers/registry.hpp"

namespace zen {

namespace {

constexpr unsigned ring_entries = 4096;
constexpr unsigned buffer_count = 512;  // a power of two
constexpr unsigned buffer_size = 16 * 1024;
constexpr unsigned short buffer_group = 1;
constexpr std::size_t send_buffer_size = 16 * 1024;
constexpr std::uint32_t no_send_buffer = ~std::uint32_t{0};
constexpr std::size_t kept_send_buffers = 256;  // idle send buffers kept allocated: 4 MiB at most

// cancel, shutdown and close complete with nothing to do: their completions are dropped.
enum class Kind : std::uint8_t { accept = 1, receive, send, cancel, stop_poll, quit_poll, shutdown, close };

std::uint64_t make_data(Kind kind, std::uint32_t slot, std::uint32_t generation) {
    return (std::uint64_t{static_cast<std::uint8_t>(kind)} << 56) | (std::uint64_t{slot & 0xffffff} << 32) | generation;
}
Kind kind_of(std::uint64_t data) { return static_cast<Kind>(data >> 56); }
std::uint32_t slot_of(std::uint64_t data) { return static_cast<std::uint32_t>(data >> 32) & 0xffffff; }
std::uint32_t generation_of(std::uint64_t data) { return static_cast<std::uint32_t>(data); }

struct Client {
    Client(const ConnectionContext& context, Fd socket, const SocketAddress& peer, TimePoint now)
        : fd(std::move(socket)), connection(context, peer, now) {}
    enum class Receive : std::uint8_t {
        none,
        waiting,  // a multishot receive (or a one-shot one) waits for data
        nowait,   // stopping: a MSG_DONTWAIT receive takes what has arrived, or -EAGAIN
    };
    Fd fd;
    Connection connection;
    TimePoint armed = never;
    Receive receive = Receive::none;  // until the receive's last completion (no IORING_CQE_F_MORE)
    bool cancelling = false;          // a cancel of that receive is submitted
    std::uint32_t send_buffer = no_send_buffer;  // the server's send buffer a send in flight reads
    bool shut_down_writing = false;
    bool cut = false;  // every operation in flight is cancelled: the connection is over
    bool sending() const { return send_buffer != no_send_buffer; }
    bool in_flight() const { return receive != Receive::none || sending(); }
};

class UringServer {
public:
    UringServer(Listener& listener, const ServerContext& context)
        : listener_(listener), context_(context), multishot_accept_(!context.options.no_multishot),
          multishot_receive_(!context.options.no_multishot) {}
    ~UringServer();

    int run();

private:
    bool set_up();
    io_uring_sqe* sqe();
    // An operation whose completion says nothing the loop needs: none is posted on success.
    io_uring_sqe* quiet_sqe(Kind kind);
    void submit_accept();
    void submit_receive(std::uint32_t index, bool nowait);
    void submit_send(std::uint32_t index, std::string_view bytes);
    void return_send_buffer(std::uint32_t id);
    void submit_cancel_receive(std::uint32_t index);
    void submit_close(int fd);
    void recycle(unsigned short buffer_id);
    void on_accept(const io_uring_cqe& cqe, TimePoint now);
    void on_receive(std::uint32_t index, const io_uring_cqe& cqe, TimePoint now);
    void on_send(std::uint32_t index, int result, TimePoint now);
    void advance(std::uint32_t index);
    void release(std::uint32_t index);
    void begin_drain(TimePoint now);
    void arm(std::uint32_t index);
    // Before each wait: the drain, the quit, --exit-idle, the accept and the receives to retry.
    // False once the server is done.
    bool prepare_turn(TimePoint now);
    void retry_receives();
    // Submits this turn's operations and waits for a completion or the next deadline; false
    // when the wait failed.
    bool submit_and_wait(TimePoint now);
    void on_completion(const io_uring_cqe& cqe, TimePoint now);
    void on_deadline(TimePoint when, std::uint64_t token, TimePoint now);
    std::uint64_t data(Kind kind, std::uint32_t index) { return make_data(kind, index, clients_.generation(index)); }

    Listener& listener_;
    const ServerContext& context_;
    io_uring ring_{};
    bool ring_ready_ = false;
    io_uring_buf_ring* buffers_ring_ = nullptr;
    std::vector<char> buffers_;
    // Send buffers, one per send in flight, named by index. Up to kept_send_buffers idle ones
    // stay allocated for reuse, so a steady load of that many sends in flight allocates none; past
    // that, a returned buffer is freed (its index stays, empty, for the next one allocated), so a
    // burst of ten thousand sends does not hold 160 MiB for the rest of the server's life.
    std::vector<std::unique_ptr<char[]>> send_buffers_;
    std::vector<std::uint32_t> idle_send_buffers_;    // allocated, no send in flight
    std::vector<std::uint32_t> unused_send_buffers_;  // freed: indexes to allocate again
    SlotTable<Client> clients_;
    std::vector<std::uint32_t> retry_receive_;
    std::vector<std::uint32_t> retrying_;
    TimerQueue timers_;
    bool multishot_accept_;   // until the kernel says -EINVAL, or --no-multishot
    bool multishot_receive_;
    bool accept_armed_ = false;
    bool accepting_ = true;
    bool draining_ = false;
    TimePoint accept_paused_until_ = TimePoint::min();
};

UringServer::~UringServer() {
    if (ring_ready_) {
        if (buffers_ring_ != nullptr) {
            io_uring_unregister_buf_ring(&ring_, buffer_group);
            ::munmap(buffers_ring_, buffer_count * sizeof(io_uring_buf));
        }
        io_uring_queue_exit(&ring_);
    }
}

bool UringServer::set_up() {
    // The ring is this thread's alone (SINGLE_ISSUER), so the kernel may run completion work
    // when the loop asks for completions instead of interrupting it (DEFER_TASKRUN, Linux 6.1):
    // fewer interruptions, more completions per wake-up. Older kernels get what they support.
    int rc = -EINVAL;
    for (const unsigned flags : {IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN | IORING_SETUP_SINGLE_ISSUER |
                                     IORING_SETUP_DEFER_TASKRUN,
                                 IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN, IORING_SETUP_SUBMIT_ALL, 0u}) {
        io_uring_params params{};
        params.flags = flags;
        rc = io_uring_queue_init_params(ring_entries, &ring_, &params);
        if (rc != -EINVAL) break;
    }
    if (rc < 0) {
        startup_failed(context_, "uring_error", "io_uring is not available: " + errno_text(-rc));
        return false;
    }
    ring_ready_ = true;
    void* memory = ::mmap(nullptr, buffer_count * sizeof(io_uring_buf), PROT_READ | PROT_WRITE,
                          MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (memory == MAP_FAILED) {
        startup_failed(context_, "uring_error", "cannot map the buffer ring: " + errno_text(errno));
        return false;
    }
    buffers_ring_ = static_cast<io_uring_buf_ring*>(memory);
    io_uring_buf_reg registration{};
    registration.ring_addr = reinterpret_cast<std::uint64_t>(buffers_ring_);
    registration.ring_entries = buffer_count;
    registration.bgid = buffer_group;
    rc = io_uring_register_buf_ring(&ring_, &registration, 0);
    if (rc < 0) {
        ::munmap(buffers_ring_, buffer_count * sizeof(io_uring_buf));
        buffers_ring_ = nullptr;
        startup_failed(context_, "uring_error",
                       "io_uring provided buffer rings are not available (Linux 5.19 or later needed): " +
                           errno_text(-rc));
        return false;
    }
    io_uring_buf_ring_init(buffers_ring_);
    buffers_.resize(std::size_t{buffer_count} * buffer_size);
    for (unsigned i = 0; i < buffer_count; ++i) {
        io_uring_buf_ring_add(buffers_ring_, buffers_.data() + std::size_t{i} * buffer_size, buffer_size,
                              static_cast<unsigned short>(i), io_uring_buf_ring_mask(buffer_count), static_cast<int>(i));
    }
    io_uring_buf_ring_advance(buffers_ring_, buffer_count);
    return true;
}

io_uring_sqe* UringServer::sqe() {
    io_uring_sqe* entry = io_uring_get_sqe(&ring_);
    if (entry == nullptr) {  // the submission queue is full: hand it to the kernel and go on
        io_uring_submit(&ring_);
        entry = io_uring_get_sqe(&ring_);
    }
    return entry;
}

io_uring_sqe* UringServer::quiet_sqe(Kind kind) {
    io_uring_sqe* entry = sqe();
    entry->flags |= IOSQE_CQE_SKIP_SUCCESS;
    io_uring_sqe_set_data64(entry, make_data(kind, 0, 0));
    return entry;
}

void UringServer::recycle(unsigned short buffer_id) {
    io_uring_buf_ring_add(buffers_ring_, buffers_.data() + std::size_t{buffer_id} * buffer_size, buffer_size,
                          buffer_id, io_uring_buf_ring_mask(buffer_count), 0);
    io_uring_buf_ring_advance(buffers_ring_, 1);
}

void UringServer::submit_accept() {
    io_uring_sqe* entry = sqe();
    if (multishot_accept_) {
        io_uring_prep_multishot_accept(entry, listener_.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    } else {
        io_uring_prep_accept(entry, listener_.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    }
    io_uring_sqe_set_data64(entry, make_data(Kind::accept, 0, 0));
    accept_armed_ = true;
}

void UringServer::submit_receive(std::uint32_t index, bool nowait) {
    Client& client = *clients_.at(index);
    io_uring_sqe* entry = sqe();
    if (nowait) {
        io_uring_prep_recv(entry, client.fd.get(), nullptr, buffer_size, MSG_DONTWAIT);
    } else if (multishot_receive_) {
        io_uring_prep_recv_multishot(entry, client.fd.get(), nullptr, 0, 0);
    } else {
        io_uring_prep_recv(entry, client.fd.get(), nullptr, buffer_size, 0);
    }
    entry->flags |= IOSQE_BUFFER_SELECT;
    entry->buf_group = buffer_group;
    io_uring_sqe_set_data64(entry, data(Kind::receive, index));
    client.receive = nowait ? Client::Receive::nowait : Client::Receive::waiting;
}

// The session's output may grow (and move) while the kernel reads a send: the send reads a copy.
void UringServer::submit_send(std::uint32_t index, std::string_view bytes) {
    Client& client = *clients_.at(index);
    if (!idle_send_buffers_.empty()) {
        client.send_buffer = idle_send_buffers_.back();
        idle_send_buffers_.pop_back();
    } else {
        if (!unused_send_buffers_.empty()) {
            client.send_buffer = unused_send_buffers_.back();
            unused_send_buffers_.pop_back();
        } else {
            client.send_buffer = static_cast<std::uint32_t>(send_buffers_.size());
            send_buffers_.emplace_back();
        }
        send_buffers_[client.send_buffer] = std::make_unique_for_overwrite<char[]>(send_buffer_size);
    }
    const std::size_t size = std::min(bytes.size(), send_buffer_size);
    char* copy = send_buffers_[client.send_buffer].get();
    std::memcpy(copy, bytes.data(), size);
    io_uring_sqe* entry = sqe();
    io_uring_prep_send(entry, client.fd.get(), copy, size, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(entry, data(Kind::send, index));
}

void UringServer::return_send_buffer(std::uint32_t id) {
    if (idle_send_buffers_.size() < kept_send_buffers) {
        idle_send_buffers_.push_back(id);
    } else {
        send_buffers_[id].reset();
        unused_send_buffers_.push_back(id);
    }
}

void UringServer::submit_cancel_receive(std::uint32_t index) {
    io_uring_prep_cancel64(quiet_sqe(Kind::cancel), data(Kind::receive, index), 0);
    clients_.at(index)->cancelling = true;  // the receive ends with -ECANCELED (or with its own result)
}

void UringServer::submit_close(int fd) { io_uring_prep_close(quiet_sqe(Kind::close), fd); }

void UringServer::on_accept(const io_uring_cqe& cqe, TimePoint now) {
    if (!(cqe.flags & IORING_CQE_F_MORE)) accept_armed_ = false;
    if (cqe.res == -EINVAL && multishot_accept_) {
        multishot_accept_ = false;  // no multishot accept in this kernel: one at a time
        return;
    }
    if (cqe.res < 0) {
        const int error = -cqe.res;
        if (error == ECANCELED || error == ECONNABORTED || error == EINTR || error == EAGAIN) return;
        AcceptOutcome outcome{AcceptStatus::failed, {}, error};
        if (error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM) {
            outcome.status = AcceptStatus::out_of_fds;
            accept_paused_until_ = now + accept_pause;
        }
        log_accept_problem(outcome, context_);
        if (outcome.status == AcceptStatus::failed) accepting_ = false;
        return;
    }
    if (!accepting_) {  // accepted as we stopped: closed at once
        submit_close(cqe.res);
        return;
    }
    Fd socket(cqe.res);
    SocketAddress peer;
    peer.length = sizeof peer.storage;
    ::getpeername(socket.get(), peer.get(), &peer.length);
    if (const ClientSocketOptions* set = options_to_set(listener_)) set_client_options(socket.get(), *set);  // see Listener
    const std::uint32_t index = clients_.insert(std::make_unique<Client>(context_, std::move(socket), peer, now));
    advance(index);  // refused: closed before a byte is read
}

void UringServer::on_receive(std::uint32_t index, const io_uring_cqe& cqe, TimePoint now) {
    Client& client = *clients_.at(index);
    if (!(cqe.flags & IORING_CQE_F_MORE)) {
        client.receive = Client::Receive::none;  // its last completion: a new one may be submitted
        client.cancelling = false;
    }
    Connection& connection = client.connection;
    if (cqe.res > 0) {
        const auto buffer_id = static_cast<unsigned short>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
        connection.received({buffers_.data() + std::size_t{buffer_id} * buffer_size, static_cast<std::size_t>(cqe.res)},
                            now);  // the connection keeps what it needs: the buffer goes back at once
        recycle(buffer_id);
    } else if (cqe.res == 0) {
        connection.received_eof(now);
    } else if (cqe.res == -ENOBUFS) {
        retry_receive_.push_back(index);  // the ring ran dry: again next turn, once buffers are back
        return;
    } else if (cqe.res == -EAGAIN) {
        connection.nothing_to_read(now);  // a MSG_DONTWAIT receive found the socket empty
    } else if (cqe.res == -EINVAL && multishot_receive_ && client.receive == Client::Receive::none) {
        multishot_receive_ = false;  // no multishot receive in this kernel (Linux 6.0): one-shot ones
    } else if (cqe.res != -ECANCELED) {
        report_socket_error(connection, client.fd.get(), -cqe.res, now);
    }
    // -ECANCELED: stopped for backpressure or for the drain; advance() decides what comes next.
    advance(index);
}

void UringServer::on_send(std::uint32_t index, int result, TimePoint now) {
    Client& client = *clients_.at(index);
    return_send_buffer(client.send_buffer);
    client.send_buffer = no_send_buffer;
    if (result < 0) {
        if (result != -ECANCELED) report_socket_error(client.connection, client.fd.get(), -result, now);
    } else {
        client.connection.sent(static_cast<std::size_t>(result), now);
    }
    advance(index);
}

// Does what the client's connection asks: send what is due unless a send is in flight, keep one
// receive in flight while it wants to read (cancel it when it stops wanting to, or when stopping
// turns reading into reading only what has arrived), wait for a deadline, or close.
void UringServer::advance(std::uint32_t index) {
    Client& client = *clients_.at(index);
    Connection& connection = client.connection;
    switch (connection.fate()) {
        case Connection::Fate::close:
        case Connection::Fate::drop:
            if (!client.in_flight()) {
                release(index);
            } else if (!client.cut) {
                client.cut = true;  // every operation on the socket ends (-ECANCELED); then the slot goes
                io_uring_prep_cancel_fd(quiet_sqe(Kind::cancel), client.fd.get(), IORING_ASYNC_CANCEL_ALL);
            }
            return;
        case Connection::Fate::linger:
            if (!client.shut_down_writing && !client.sending()) {
                client.shut_down_writing = true;
                io_uring_prep_shutdown(quiet_sqe(Kind::shutdown), client.fd.get(), SHUT_WR);
            }
            break;
        case Connection::Fate::keep:
            break;
    }
    if (!client.sending()) {
        if (const std::string_view out = connection.output(); !out.empty()) submit_send(index, out);
    }
    const bool wants = connection.wants_read();
    const bool nowait = connection.reads_without_waiting();
    if (client.receive == Client::Receive::none) {
        if (wants) submit_receive(index, nowait);
    } else if (client.receive == Client::Receive::waiting && !client.cancelling && (!wants || nowait)) {
        submit_cancel_receive(index);
    }
    arm(index);
}

void UringServer::release(std::uint32_t index) {
    submit_close(clients_.at(index)->fd.release());
    clients_.release(index);
}

void UringServer::arm(std::uint32_t index) {
    Client& client = *clients_.at(index);
    const TimePoint deadline = client.connection.deadline();
    if (deadline >= client.armed) return;
    client.armed = deadline;
    timers_.arm(deadline, clients_.token_of(index));
    timers_.drop_stale(clients_.live(), [this](std::uint64_t stale) { return clients_.find(stale) == nullptr; });
}

void UringServer::begin_drain(TimePoint now) {
    draining_ = true;
    accepting_ = false;
    for (std::uint32_t index = 0; index < clients_.slots(); ++index) {
        if (clients_.at(index) == nullptr) continue;
        clients_.at(index)->connection.stop(now, drain_deadline(context_));
        advance(index);  // cancels a waiting receive: what has arrived is read without waiting
    }
}

bool UringServer::prepare_turn(TimePoint now) {
    if (stop_requested() && !draining_) begin_drain(now);
    if (quit_requested()) accepting_ = false;
    if (accepting_ && idle_exit_due(context_, {listener_.fd.get()}, now)) {
        quit_for_idleness(context_);
        accepting_ = false;
    }
    if (!accepting_ && accept_armed_) {
        io_uring_prep_cancel64(quiet_sqe(Kind::cancel), make_data(Kind::accept, 0, 0), 0);
        accept_armed_ = false;  // its -ECANCELED completion follows
    }
    if (!accepting_ && clients_.live() == 0) {
        io_uring_submit(&ring_);  // the last closes
        return false;
    }
    if (accepting_ && !accept_armed_ && now >= accept_paused_until_) submit_accept();
    retry_receives();
    return true;
}

// Receives that found the buffer ring dry: every buffer is back by now, but re-arming them all
// at once would only run it dry again. Half a ring's worth a turn, oldest first.
void UringServer::retry_receives() {
    if (retry_receive_.empty()) return;
    const std::size_t count = std::min<std::size_t>(retry_receive_.size(), buffer_count / 2);
    retrying_.assign(retry_receive_.begin(), retry_receive_.begin() + static_cast<std::ptrdiff_t>(count));
    retry_receive_.erase(retry_receive_.begin(), retry_receive_.begin() + static_cast<std::ptrdiff_t>(count));
    for (const std::uint32_t index : retrying_) {
        const Client* client = clients_.at(index);
        if (client != nullptr && client->receive == Client::Receive::none) advance(index);
    }
}

bool UringServer::submit_and_wait(TimePoint now) {
    TimePoint wake = timers_.next();
    if (accepting_ && !accept_armed_) wake = std::min(wake, accept_paused_until_);
    if (accepting_) wake = std::min(wake, idle_exit_wake(context_, now));
    const auto wait_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(wait_duration(wake, now, std::chrono::minutes(1)));
    __kernel_timespec timeout{};
    timeout.tv_sec = wait_ns.count() / 1'000'000'000;
    timeout.tv_nsec = wait_ns.count() % 1'000'000'000;
    io_uring_cqe* first = nullptr;
    const int rc = io_uring_submit_and_wait_timeout(&ring_, &first, 1, &timeout, nullptr);
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY) {
        context_.log.server(LogLevel::error, "uring_error", "io_uring wait failed: " + errno_text(-rc));
        return false;
    }
    return true;
}

void UringServer::on_completion(const io_uring_cqe& cqe, TimePoint now) {
    const std::uint64_t user_data = io_uring_cqe_get_data64(&cqe);
    const Kind kind = kind_of(user_data);
    if (kind == Kind::accept) {
        on_accept(cqe, now);
        return;
    }
    // stop_poll and quit_poll: seen at the top of the loop; cancel, shutdown, close (failures
    // only): nothing to do.
    if (kind != Kind::receive && kind != Kind::send) return;
    const std::uint32_t index = slot_of(user_data);
    if (clients_.find(index, generation_of(user_data)) == nullptr) {
        if (kind == Kind::receive && (cqe.flags & IORING_CQE_F_BUFFER)) {
            recycle(static_cast<unsigned short>(cqe.flags >> IORING_CQE_BUFFER_SHIFT));
        }
        return;  // a late completion for a client that is gone
    }
    if (kind == Kind::receive) {
        on_receive(index, cqe, now);
    } else {
        on_send(index, cqe.res, now);
    }
}

void UringServer::on_deadline(TimePoint when, std::uint64_t token, TimePoint now) {
    Client* client = clients_.find(token);
    if (client == nullptr || client->armed != when) return;  // gone, or superseded
    client->armed = never;
    client->connection.tick(now);  // a timeout, a --wait answer due, a linger's end
    advance(SlotTable<Client>::index_of(token));
}

int UringServer::run() {
    if (!set_up()) return 1;
    const HardStopWatchdog watchdog(context_);
    io_uring_sqe* entry = sqe();
    io_uring_prep_poll_add(entry, stop_fd(), POLLIN);
    io_uring_sqe_set_data64(entry, make_data(Kind::stop_poll, 0, 0));
    entry = sqe();
    io_uring_prep_poll_add(entry, quit_fd(), POLLIN);
    io_uring_sqe_set_data64(entry, make_data(Kind::quit_poll, 0, 0));
    trace_thread_name(context_, "io_uring ring");
    if (!announce_serving(listener_, context_)) return 1;

    for (;;) {
        TimePoint now = Clock::now();
        if (!prepare_turn(now)) return 0;
        if (!submit_and_wait(now)) return 1;
        now = Clock::now();
        unsigned head = 0;
        unsigned seen = 0;
        io_uring_cqe* cqe = nullptr;
        io_uring_for_each_cqe(&ring_, head, cqe) {
            ++seen;
            on_completion(*cqe, now);
        }
        io_uring_cq_advance(&ring_, seen);
        timers_.expire(now, [&](TimePoint when, std::uint64_t token) { on_deadline(when, token, now); });
    }
}

}  // namespace

int serve_uring(Listener& listener, const ServerContext& context) {
    UringServer server(listener, context);
    return server.run();
}

}  // namespace zen
