#include "loop/transport.hpp"

#include <algorithm>

#include <sys/epoll.h>
#include <sys/socket.h>

#include "net/io.hpp"

namespace zen::loop {

namespace {

constexpr std::size_t read_size = 64 * 1024;
// What the writes made while one read is delivered may queue before the protocol is paused.
constexpr std::size_t corked_limit = 64 * 1024;

}  // namespace

Transport::Transport(EventLoop& loop, AcceptedClient client, std::unique_ptr<Protocol> protocol)
    : loop_(loop), fd_(std::move(client.fd)), peer_(client.peer), protocol_(std::move(protocol)) {}

Transport::~Transport() {
    if (fd_.valid()) loop_.remove_watch(fd_.get());
}

void Transport::start() {
    if (!loop_.add_watch(fd_.get(), EPOLLIN, [this](std::uint32_t events) { on_event(events); })) {
        finish(errno_text(errno));
        return;
    }
    protocol_->connection_made(*this);
}

void Transport::update_watch() {
    if (closed_) return;
    const bool want_in = reading_ && !eof_seen_;
    const bool want_out = write_buffer_size() > 0;
    const std::uint32_t events = (want_in ? EPOLLIN : 0u) | (want_out ? EPOLLOUT : 0u);
    watching_out_ = want_out;
    if (events == watched_) return;  // no epoll_ctl() per answer when nothing changes
    loop_.modify_watch(fd_.get(), events);
    watched_ = events;
}

void Transport::on_event(std::uint32_t events) {
    if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        if (reading_ && !eof_seen_) {
            read_once();
        } else if (events & (EPOLLHUP | EPOLLERR)) {
            flush();  // a send will report the error
            if (!closed_ && write_buffer_size() == 0 && (events & EPOLLERR)) fail(pending_socket_error(fd_.get()));
        }
    }
    if (!closed_ && (events & EPOLLOUT)) flush();
}

bool Transport::read_once() {
    char buffer[read_size];
    const IoResult got = receive_some(fd_.get(), buffer, sizeof buffer);
    if (got.status == IoStatus::ok) {
        // Corked: what the protocol writes for this read leaves in one send after it returns,
        // not one send per write() (an asynchat channel pushes each answer on its own).
        corked_ = true;
        protocol_->data_received({buffer, got.bytes});
        corked_ = false;
        if (!closed_ && write_buffer_size() > 0) flush();
        return true;
    }
    if (got.status == IoStatus::eof) {
        eof_seen_ = true;
        update_watch();
        protocol_->eof_received();
    } else if (got.status == IoStatus::error) {
        fail(got.error);
    }
    return false;
}

bool Transport::read_now() {
    while (!closed_ && reading_ && !eof_seen_ && read_once()) {
    }
    return eof_seen_;
}

void Protocol::server_closing(Transport& transport) { transport.close(); }

void Transport::write(std::string_view data) {
    if (closing_ || closed_ || eof_after_flush_ || data.empty()) return;
    if (write_buffer_size() == 0 && !corked_) {
        // Write first: most answers leave at once and never touch the queue.
        const IoResult sent = send_some(fd_.get(), data);
        if (sent.status == IoStatus::error) {
            fail(sent.error);
            return;
        }
        if (sent.status == IoStatus::ok) data.remove_prefix(sent.bytes);
        if (data.empty()) return;
    }
    queued_.append(data);
    if (corked_) {
        // Sent, and held against the marks, once data_received() returns; but one read's
        // answers never pile up past a bound of their own.
        if (!writing_paused_ && write_buffer_size() > std::max(high_water_, corked_limit)) {
            writing_paused_ = true;
            protocol_->pause_writing();
        }
        return;
    }
    if (!watching_out_) update_watch();
    check_high_water();
}

void Transport::check_high_water() {
    if (!writing_paused_ && write_buffer_size() > high_water_) {
        writing_paused_ = true;
        protocol_->pause_writing();
    }
}

void Transport::flush() {
    while (!closed_ && write_buffer_size() > 0) {
        const IoResult sent = send_some(fd_.get(), std::string_view(queued_).substr(queued_sent_));
        if (sent.status == IoStatus::error) {
            fail(sent.error);
            return;
        }
        if (sent.status == IoStatus::would_block) break;
        queued_sent_ += sent.bytes;
    }
    if (closed_) return;
    if (write_buffer_size() == 0) {
        queued_.clear();
        queued_sent_ = 0;
    } else if (queued_sent_ > 64 * 1024) {
        queued_.erase(0, queued_sent_);
        queued_sent_ = 0;
    }
    check_high_water();
    if (writing_paused_ && write_buffer_size() <= low_water_) {
        writing_paused_ = false;
        protocol_->resume_writing();
        if (closed_) return;
    }
    if (write_buffer_size() == 0) {
        if (closing_) {
            finish({});
            return;
        }
        if (eof_after_flush_ && !eof_written_) {
            eof_written_ = true;
            ::shutdown(fd_.get(), SHUT_WR);
        }
    }
    update_watch();
}

void Transport::write_eof() {
    eof_after_flush_ = true;
    flush();
}

void Transport::close() {
    if (closed_) return;
    closing_ = true;
    reading_ = false;
    flush();
}

void Transport::abort(std::string_view error) { finish(error); }

void Transport::fail(int error) {
    silence_ = peer_silence(fd_.get(), error);
    finish(error != 0 ? errno_text(error) : std::string("connection error"));
}

void Transport::pause_reading() {
    if (!reading_) return;
    reading_ = false;
    update_watch();
}

void Transport::resume_reading() {
    if (reading_ || closing_) return;
    reading_ = true;
    update_watch();
}

void Transport::set_write_buffer_limits(std::size_t high, std::size_t low) {
    high_water_ = high;
    low_water_ = low;
}

void Transport::finish(std::string_view error) {
    if (closed_) return;
    closed_ = true;
    loop_.remove_watch(fd_.get());
    fd_.reset();
    protocol_->connection_lost(error);
    if (on_closed_) on_closed_();
}

}  // namespace zen::loop
