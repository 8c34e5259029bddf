// --arch uring: a completion-based loop on io_uring (liburing) — beyond the book.
//
// Technique: instead of asking "which sockets are ready?" and then calling recv()/send(), the
// loop submits the operations themselves and is told when they are done; many submissions and
// completions cross in one system call (io_uring_submit_and_wait_timeout). Accepts use one
// multishot accept (Linux 5.19+; the first -EINVAL falls back to one accept at a time). Reads
// use a ring of provided buffers (io_uring_register_buf_ring, Linux 5.19+): a receive takes a
// buffer only when data arrives, so an idle client holds none. Needs: io_uring and provided
// buffer rings; without them the server says so and exits 1.
// Model: one thread. Each client has at most one operation in flight: a receive, or a send of
// its pending answers (the session's output must not move under a send the kernel is reading).
// Completions carry kind + slot + generation, never a raw fd: a late completion for a closed
// client is recognised and dropped (its buffer still goes back to the ring).
// Blocks: only in io_uring_submit_and_wait_timeout() — and in --delay (the lesson).
// Connection limit: none of its own; the fd limit.
// EAGAIN/EINTR: the kernel's business. Short sends: the rest is sent again. EOF: the session
// answers what came before it. Backpressure: no receive is submitted while answers wait to be
// sent. -ENOBUFS (ring empty): the receive is retried on the next turn. EMFILE: accepting
// pauses 100 ms, logged once a second. Timeouts and the linger after an error answer end a
// conversation with shutdown(), which completes its pending receive.
// Stop: SIGTERM/SIGINT end accepting; pending receives are cancelled, what has arrived is read
// without waiting, answered and sent, then each client is closed by --drain-timeout. SIGQUIT and
// --exit-idle end accepting and let conversations finish.
#include <liburing.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>

#include <memory>
#include <thread>
#include <vector>

#include "loop/timer_queue.hpp"
#include "net/io.hpp"
#include "net/signals.hpp"
#include "servers/answer_pacer.hpp"
#include "servers/blocking.hpp"
#include "servers/connection_tracker.hpp"

namespace zen {

namespace {

constexpr unsigned ring_entries = 4096;
constexpr unsigned buffer_count = 512;  // a power of two
constexpr unsigned buffer_size = 16 * 1024;
constexpr unsigned short buffer_group = 1;
constexpr auto never = Clock::time_point::max();

enum class Kind : std::uint8_t { accept = 1, receive, send, cancel, stop_poll, quit_poll };

std::uint64_t make_data(Kind kind, std::uint32_t slot, std::uint32_t generation) {
    return (std::uint64_t{static_cast<std::uint8_t>(kind)} << 56) | (std::uint64_t{slot & 0xffffff} << 32) | generation;
}
Kind kind_of(std::uint64_t data) { return static_cast<Kind>(data >> 56); }
std::uint32_t slot_of(std::uint64_t data) { return static_cast<std::uint32_t>(data >> 32) & 0xffffff; }
std::uint32_t generation_of(std::uint64_t data) { return static_cast<std::uint32_t>(data); }

struct Client {
    Client(const ServerContext& context, Fd socket, ClientIntake opened, Clock::time_point now)
        : fd(std::move(socket)), intake(std::move(opened)), peer(intake.peer()),
          session(context.table, context.options.limits), pacer(context.options, now), last_activity(now) {}
    Fd fd;
    ClientIntake intake;
    std::string peer;
    Session session;
    AnswerPacer pacer;
    std::uint64_t sent_total = 0;
    Clock::time_point last_activity;
    Clock::time_point question_deadline = never;
    Clock::time_point linger_deadline = never;
    Clock::time_point armed = never;
    bool in_flight = false;      // one receive or send at a time
    bool ended = false;          // its end is logged; only closing is left
    bool lingering = false;      // after an error answer or a drain: discarding until EOF
    bool draining = false;
    bool want_receive_retry = false;  // the buffer ring was empty
};

class UringServer {
public:
    UringServer(Listener& listener, const ServerContext& context) : listener_(listener), context_(context) {}
    ~UringServer();

    int run();

private:
    bool set_up();
    io_uring_sqe* sqe();
    void submit_accept();
    void submit_receive(std::uint32_t index);
    void submit_send(std::uint32_t index);
    void recycle(unsigned short buffer_id);
    void on_accept(const io_uring_cqe& cqe, Clock::time_point now);
    void on_receive(std::uint32_t index, const io_uring_cqe& cqe, Clock::time_point now);
    void on_send(std::uint32_t index, int result, Clock::time_point now);
    void advance(std::uint32_t index, Clock::time_point now);
    void end_with(std::uint32_t index, std::string_view error, bool timed_out = false);
    void start_linger(std::uint32_t index, Clock::time_point limit);
    void close_if_idle(std::uint32_t index);
    void on_deadline(std::uint32_t index, Clock::time_point now);
    void begin_drain(Clock::time_point now);
    void arm(std::uint32_t index);
    std::uint64_t data(Kind kind, std::uint32_t index) { return make_data(kind, index, generations_[index]); }

    Listener& listener_;
    const ServerContext& context_;
    io_uring ring_{};
    bool ring_ready_ = false;
    io_uring_buf_ring* buffers_ring_ = nullptr;
    std::vector<char> buffers_;
    std::vector<std::unique_ptr<Client>> clients_;
    std::vector<std::uint32_t> generations_;
    std::vector<std::uint32_t> free_;
    std::vector<std::uint32_t> retry_receive_;
    TimerQueue timers_;
    std::size_t live_ = 0;
    bool multishot_ = true;
    bool accept_armed_ = false;
    bool accepting_ = true;
    bool draining_ = false;
    Clock::time_point accept_paused_until_ = Clock::time_point::min();
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
        context_.log.server(LogLevel::error, "uring_error", "io_uring is not available: " + errno_text(-rc));
        return false;
    }
    ring_ready_ = true;
    void* memory = ::mmap(nullptr, buffer_count * sizeof(io_uring_buf), PROT_READ | PROT_WRITE,
                          MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
    if (memory == MAP_FAILED) {
        context_.log.server(LogLevel::error, "uring_error", "cannot map the buffer ring: " + errno_text(errno));
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
        context_.log.server(LogLevel::error, "uring_error",
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

void UringServer::recycle(unsigned short buffer_id) {
    io_uring_buf_ring_add(buffers_ring_, buffers_.data() + std::size_t{buffer_id} * buffer_size, buffer_size,
                          buffer_id, io_uring_buf_ring_mask(buffer_count), 0);
    io_uring_buf_ring_advance(buffers_ring_, 1);
}

void UringServer::submit_accept() {
    io_uring_sqe* entry = sqe();
    if (multishot_) {
        io_uring_prep_multishot_accept(entry, listener_.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    } else {
        io_uring_prep_accept(entry, listener_.fd.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    }
    io_uring_sqe_set_data64(entry, make_data(Kind::accept, 0, 0));
    accept_armed_ = true;
}

void UringServer::submit_receive(std::uint32_t index) {
    Client& client = *clients_[index];
    io_uring_sqe* entry = sqe();
    io_uring_prep_recv(entry, client.fd.get(), nullptr, buffer_size, 0);
    entry->flags |= IOSQE_BUFFER_SELECT;
    entry->buf_group = buffer_group;
    io_uring_sqe_set_data64(entry, data(Kind::receive, index));
    client.in_flight = true;
}

void UringServer::submit_send(std::uint32_t index) {
    Client& client = *clients_[index];
    const std::string_view pending = client.session.pending_output();
    const std::size_t ready = client.pacer.releasable(client.sent_total, pending.size(), Clock::now());
    io_uring_sqe* entry = sqe();
    io_uring_prep_send(entry, client.fd.get(), pending.data(), ready, MSG_NOSIGNAL);
    io_uring_sqe_set_data64(entry, data(Kind::send, index));
    client.in_flight = true;
}

void UringServer::on_accept(const io_uring_cqe& cqe, Clock::time_point now) {
    if (!(cqe.flags & IORING_CQE_F_MORE)) accept_armed_ = false;
    if (cqe.res == -EINVAL && multishot_) {
        multishot_ = false;  // no multishot accept in this kernel: one at a time
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
    Fd socket(cqe.res);
    if (!accepting_) return;  // accepted as we stopped: closed at once
    set_no_delay(socket.get());
    SocketAddress peer;
    peer.length = sizeof peer.storage;
    ::getpeername(socket.get(), peer.get(), &peer.length);
    ClientIntake intake(context_, peer, now);
    if (!intake.open(socket.get())) return;  // closed before a byte is read
    std::uint32_t index;
    if (!free_.empty()) {
        index = free_.back();
        free_.pop_back();
    } else {
        index = static_cast<std::uint32_t>(clients_.size());
        clients_.emplace_back();
        generations_.push_back(1);
    }
    clients_[index] = std::make_unique<Client>(context_, std::move(socket), std::move(intake), now);
    ++live_;
    context_.tracker.opened();
    submit_receive(index);
    arm(index);
}

void UringServer::on_receive(std::uint32_t index, const io_uring_cqe& cqe, Clock::time_point now) {
    Client& client = *clients_[index];
    client.in_flight = false;
    if (cqe.res == -ENOBUFS) {
        retry_receive_.push_back(index);  // every buffer is in use: try again next turn
        return;
    }
    if (cqe.res == -ECANCELED) {
        if (client.draining) {
            advance(index, now);  // takes in what has arrived without waiting
        } else {
            close_if_idle(index);
        }
        return;
    }
    if (cqe.res < 0) {
        end_with(index, errno_text(-cqe.res));
        return;
    }
    if (client.lingering || client.ended) {
        if (cqe.res > 0 && (cqe.flags & IORING_CQE_F_BUFFER)) recycle(static_cast<unsigned short>(cqe.flags >> IORING_CQE_BUFFER_SHIFT));
        if (cqe.res > 0 && now < client.linger_deadline) {
            submit_receive(index);  // keep discarding until the client closes
        } else {
            client.lingering = false;  // the client has closed (or the time is up): nothing to protect
            close_if_idle(index);
        }
        return;
    }
    if (cqe.res == 0 && client.intake.reading_header()) {
        client.intake.header_cut_short();
        client.ended = true;
        close_if_idle(index);
        return;
    }
    if (cqe.res == 0) {
        client.session.receive_eof();
    } else {
        const auto buffer_id = static_cast<unsigned short>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
        client.last_activity = now;
        std::string_view bytes(buffers_.data() + std::size_t{buffer_id} * buffer_size, static_cast<std::size_t>(cqe.res));
        ClientIntake::Step step = ClientIntake::Step::converse;
        std::string after_header;
        if (client.intake.reading_header()) {
            step = client.intake.feed(bytes);  // keeps its own copy: the buffer can go back
            client.peer = client.intake.peer();
            if (step == ClientIntake::Step::converse) after_header = client.intake.take_remainder();
            bytes = after_header;
        }
        if (step == ClientIntake::Step::converse) {
            const auto answers = receive_counted(context_, client.session, bytes);
            client.pacer.answered(answers, client.sent_total + client.session.pending_output().size(), now);
        }
        recycle(buffer_id);
        if (step == ClientIntake::Step::close) {
            client.ended = true;
            close_if_idle(index);
            return;
        }
    }
    advance(index, now);
}

void UringServer::on_send(std::uint32_t index, int result, Clock::time_point now) {
    Client& client = *clients_[index];
    client.in_flight = false;
    if (client.ended) {
        close_if_idle(index);
        return;
    }
    if (result < 0) {
        end_with(index, errno_text(-result));
        return;
    }
    client.session.consume_output(static_cast<std::size_t>(result));
    client.sent_total += static_cast<std::size_t>(result);
    client.last_activity = now;
    advance(index, now);
}

// Decides the client's next operation once none is in flight.
void UringServer::advance(std::uint32_t index, Clock::time_point now) {
    Client& client = *clients_[index];
    if (client.in_flight || client.ended) return;
    const std::string_view pending = client.session.pending_output();
    if (!pending.empty()) {
        if (client.pacer.releasable(client.sent_total, pending.size(), now) > 0) submit_send(index);
        arm(index);  // held by --wait: the timer sends it
        return;
    }
    if (client.session.done()) {
        client.ended = true;
        log_session_end(context_, client.peer, client.session);
        if (client.session.status() == Session::Status::too_long) {
            start_linger(index, client.draining ? std::min(drain_deadline(context_), now + close_linger)
                                                : now + close_linger);
        } else {
            close_if_idle(index);
        }
        return;
    }
    if (client.draining && client.intake.reading_header()) {
        client.ended = true;  // no question can have arrived yet
        close_if_idle(index);
        return;
    }
    if (client.draining) {
        // Stopping: read what has already arrived, without waiting.
        char buffer[buffer_size];
        const IoResult got = receive_some(client.fd.get(), buffer, sizeof buffer);
        if (got.status == IoStatus::ok) {
            receive_counted(context_, client.session, {buffer, got.bytes});
            advance(index, now);
            return;
        }
        if (got.status == IoStatus::eof) {
            client.session.receive_eof();
            advance(index, now);
            return;
        }
        client.ended = true;
        context_.log.connection(LogLevel::info, "closed_on_stop", client.peer,
                                "Client socket to " + client.peer + " closed: server stopping");
        start_linger(index, drain_deadline(context_));
        return;
    }
    if (!client.session.has_partial_question()) {
        client.question_deadline = never;
    } else if (client.question_deadline == never) {
        client.question_deadline = deadline_after(now, context_.options.question_timeout);
    }
    submit_receive(index);
    arm(index);
}

void UringServer::start_linger(std::uint32_t index, Clock::time_point limit) {
    Client& client = *clients_[index];
    client.ended = true;
    client.lingering = true;
    client.linger_deadline = limit;
    ::shutdown(client.fd.get(), SHUT_WR);
    if (!client.in_flight && Clock::now() < limit) submit_receive(index);
    arm(index);
    close_if_idle(index);
}

void UringServer::end_with(std::uint32_t index, std::string_view error, bool timed_out) {
    Client& client = *clients_[index];
    if (!client.ended) (timed_out ? log_client_timeout : log_client_error)(context_, client.peer, error);
    client.ended = true;
    client.lingering = false;
    ::shutdown(client.fd.get(), SHUT_RDWR);  // completes a pending receive, so the slot can go
    close_if_idle(index);
}

void UringServer::close_if_idle(std::uint32_t index) {
    Client& client = *clients_[index];
    if (client.in_flight || !client.ended) return;
    if (client.lingering && Clock::now() < client.linger_deadline) return;
    clients_[index].reset();
    ++generations_[index];
    free_.push_back(index);
    --live_;
    context_.tracker.closed();
}

void UringServer::arm(std::uint32_t index) {
    Client& client = *clients_[index];
    Clock::time_point deadline;
    if (client.lingering) {
        deadline = client.linger_deadline;
    } else if (client.draining) {
        deadline = drain_deadline(context_);
    } else if (client.intake.reading_header()) {
        deadline = client.intake.header_deadline();
    } else {
        const bool waiting = !client.session.pending_output().empty();
        deadline = std::min({client.question_deadline,
                             deadline_after(client.last_activity, quiet_limit(context_.options, waiting)),
                             client.pacer.next_release()});
    }
    if (deadline >= client.armed) return;
    client.armed = deadline;
    timers_.arm(deadline, data(Kind::receive, index));
    // A closed client's entry stays until its time (up to --idle-timeout away): drop such
    // entries once they outnumber the live clients, or the heap grows with the accept rate.
    if (timers_.size() > 1024 && timers_.size() > 4 * (live_ + 1)) {
        timers_.compact([this](std::uint64_t stale) {
            const std::uint32_t slot = slot_of(stale);
            return slot >= clients_.size() || !clients_[slot] || generations_[slot] != generation_of(stale);
        });
    }
}

void UringServer::on_deadline(std::uint32_t index, Clock::time_point now) {
    Client& client = *clients_[index];
    client.armed = never;
    if (client.lingering) {
        if (now >= client.linger_deadline) {
            client.lingering = false;
            ::shutdown(client.fd.get(), SHUT_RDWR);
            close_if_idle(index);
            return;
        }
    } else if (client.ended) {
        return;
    } else if (client.draining && now >= drain_deadline(context_)) {
        end_with(index, "not reading its answers; closed as the server stops", true);
        return;
    } else if (!client.draining && client.intake.reading_header()) {
        if (now >= client.intake.header_deadline()) {
            client.intake.header_timed_out();
            client.ended = true;
            ::shutdown(client.fd.get(), SHUT_RDWR);  // completes the pending receive, so the slot can go
            close_if_idle(index);
            return;
        }
    } else if (!client.draining && now >= client.question_deadline) {
        end_with(index, "question not finished within " + duration_text(context_.options.question_timeout), true);
        return;
    } else if (!client.draining &&
               now >= deadline_after(client.last_activity,
                                     quiet_limit(context_.options, !client.session.pending_output().empty()))) {
        end_with(index, !client.session.pending_output().empty()
                            ? "not reading its answers for " + duration_text(quiet_limit(context_.options, true))
                            : "idle for " + duration_text(context_.options.idle_timeout),
                 true);
        return;
    }
    advance(index, now);  // --wait answers whose time has come
    if (clients_[index]) arm(index);
}

void UringServer::begin_drain(Clock::time_point now) {
    draining_ = true;
    accepting_ = false;
    for (std::uint32_t index = 0; index < clients_.size(); ++index) {
        if (!clients_[index] || clients_[index]->ended) continue;
        Client& client = *clients_[index];
        client.draining = true;
        if (client.in_flight) {
            io_uring_sqe* entry = sqe();  // a pending receive ends with -ECANCELED; a send just finishes
            io_uring_prep_cancel64(entry, data(Kind::receive, index), 0);
            io_uring_sqe_set_data64(entry, make_data(Kind::cancel, 0, 0));
        } else {
            advance(index, now);
        }
        if (clients_[index]) arm(index);
    }
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

    for (;;) {
        auto now = Clock::now();
        if (stop_requested() && !draining_) begin_drain(now);
        if (quit_requested()) accepting_ = false;
        if (accepting_ && idle_exit_due(context_, {listener_.fd.get()})) {
            quit_for_idleness(context_);
            accepting_ = false;
        }
        if (!accepting_ && accept_armed_) {
            io_uring_sqe* cancel = sqe();
            io_uring_prep_cancel64(cancel, make_data(Kind::accept, 0, 0), 0);
            io_uring_sqe_set_data64(cancel, make_data(Kind::cancel, 0, 0));
            accept_armed_ = false;  // its -ECANCELED completion follows
        }
        if (!accepting_ && live_ == 0) return 0;
        if (accepting_ && !accept_armed_ && now >= accept_paused_until_) submit_accept();
        std::vector<std::uint32_t> retry;
        retry.swap(retry_receive_);
        for (const std::uint32_t index : retry) {
            if (clients_[index] && !clients_[index]->in_flight) advance(index, now);
        }

        auto wake = timers_.next();
        if (accepting_ && !accept_armed_) wake = std::min(wake, accept_paused_until_);
        if (accepting_ && context_.options.exit_idle.count() > 0) wake = std::min(wake, now + std::chrono::milliseconds(100));
        if (!retry_receive_.empty()) wake = std::min(wake, now + std::chrono::milliseconds(1));
        const auto wait_ns = wake == never ? std::chrono::nanoseconds(std::chrono::seconds(60))
                                           : std::max(std::chrono::nanoseconds(0), std::chrono::duration_cast<std::chrono::nanoseconds>(wake - now));
        __kernel_timespec timeout{};
        timeout.tv_sec = wait_ns.count() / 1'000'000'000;
        timeout.tv_nsec = wait_ns.count() % 1'000'000'000;
        io_uring_cqe* first = nullptr;
        const int rc = io_uring_submit_and_wait_timeout(&ring_, &first, 1, &timeout, nullptr);
        if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY) {
            context_.log.server(LogLevel::error, "uring_error", "io_uring wait failed: " + errno_text(-rc));
            return 1;
        }
        now = Clock::now();

        unsigned head = 0;
        unsigned seen = 0;
        io_uring_cqe* cqe = nullptr;
        io_uring_for_each_cqe(&ring_, head, cqe) {
            ++seen;
            const std::uint64_t user_data = io_uring_cqe_get_data64(cqe);
            const Kind kind = kind_of(user_data);
            if (kind == Kind::accept) {
                on_accept(*cqe, now);
                continue;
            }
            if (kind == Kind::receive || kind == Kind::send) {
                const std::uint32_t index = slot_of(user_data);
                const bool current = index < clients_.size() && clients_[index] &&
                                     generations_[index] == generation_of(user_data);
                if (!current) {
                    if (kind == Kind::receive && cqe->res > 0 && (cqe->flags & IORING_CQE_F_BUFFER)) {
                        recycle(static_cast<unsigned short>(cqe->flags >> IORING_CQE_BUFFER_SHIFT));
                    }
                    continue;
                }
                if (kind == Kind::receive) {
                    on_receive(index, *cqe, now);
                } else {
                    on_send(index, cqe->res, now);
                }
            }
            // stop_poll and quit_poll: seen at the top of the loop; cancel: nothing to do.
        }
        io_uring_cq_advance(&ring_, seen);

        timers_.expire(now, [&](Clock::time_point when, std::uint64_t token) {
            const std::uint32_t index = slot_of(token);
            if (index >= clients_.size() || !clients_[index] || generations_[index] != generation_of(token)) return;
            if (clients_[index]->armed != when) return;  // superseded
            on_deadline(index, now);
        });
    }
}

}  // namespace

int serve_uring(Listener& listener, const ServerContext& context) {
    UringServer server(listener, context);
    return server.run();
}

}  // namespace zen
