// Streams on the event loop, in the shape of asyncio's Protocol and Transport: the loop reads
// and calls the protocol's data_received(); the protocol answers with transport.write(), which
// sends at once what the socket takes and queues the rest (write first). A queue above the high
// mark calls pause_writing() on the protocol; at or below the low mark, resume_writing(). The
// writes made inside data_received() are corked: sent together once it returns, and only then
// held against the marks.
#pragma once

#include <sys/epoll.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "loop/event_loop.hpp"
#include "net/listener.hpp"

namespace zen::loop {

class Transport;

class Protocol {
public:
    virtual ~Protocol() = default;
    virtual void connection_made(Transport& transport) = 0;
    virtual void data_received(std::string_view data) = 0;
    // The peer will send no more; reading stops. The transport stays open for writing.
    virtual void eof_received() {}
    // The connection is gone; error is empty for an orderly close. Called once, last.
    virtual void connection_lost(std::string_view error) = 0;
    virtual void pause_writing() {}
    virtual void resume_writing() {}
    // The server is shutting down (Server::close_clients()): finish up and close. By default the
    // transport is closed once what is queued is sent.
    virtual void server_closing(Transport& transport);
};

class Transport {
public:
    // Takes the connected, non-blocking socket; starts reading once connection_made has run.
    Transport(EventLoop& loop, AcceptedClient client, std::unique_ptr<Protocol> protocol);
    ~Transport();
    Transport(const Transport&) = delete;
    Transport& operator=(const Transport&) = delete;

    void start();
    // Called once the connection is gone, after the protocol's connection_lost().
    void set_on_closed(std::function<void()> on_closed) { on_closed_ = std::move(on_closed); }
    void write(std::string_view data);
    // Shuts down the sending side once everything queued is sent; reading goes on.
    void write_eof();
    // Closes once everything queued is sent.
    void close();
    // Closes now, dropping what is queued.
    void abort(std::string_view error = {});
    void pause_reading();
    void resume_reading();
    // Reads what the socket holds now, without waiting (for a server that is stopping); true
    // when it has read to EOF.
    bool read_now();

    std::size_t write_buffer_size() const { return queued_.size() - queued_sent_; }
    void set_write_buffer_limits(std::size_t high, std::size_t low);
    bool is_closing() const { return closing_ || closed_; }
    bool closed() const { return closed_; }
    const SocketAddress& peer() const { return peer_; }
    int fd() const { return fd_.get(); }
    Protocol& protocol() { return *protocol_; }
    bool eof_received() const { return eof_seen_; }
    // For the error connection_lost() was given: which of the kernel's timers gave up on the peer.
    PeerSilence silence() const { return silence_; }
    EventLoop& loop() { return loop_; }

private:
    void on_event(std::uint32_t events);
    // One read, handed to the protocol; false once there is nothing more to read now.
    bool read_once();
    void flush();
    void check_high_water();
    void update_watch();
    void finish(std::string_view error);
    void fail(int error);  // a read or send failed with errno `error` (0: the socket said nothing)

    EventLoop& loop_;
    Fd fd_;
    SocketAddress peer_;
    std::unique_ptr<Protocol> protocol_;
    std::function<void()> on_closed_;
    std::string queued_;
    std::size_t queued_sent_ = 0;
    std::size_t high_water_ = 64 * 1024;
    std::size_t low_water_ = 16 * 1024;
    bool reading_ = true;
    bool eof_seen_ = false;
    bool writing_paused_ = false;
    bool eof_after_flush_ = false;
    bool eof_written_ = false;
    bool closing_ = false;
    bool closed_ = false;
    bool watching_out_ = false;
    std::uint32_t watched_ = EPOLLIN;  // the events the loop watches for this fd (start())
    bool corked_ = false;  // inside data_received(): writes are queued, sent once it returns
    PeerSilence silence_ = PeerSilence::none;
};

}  // namespace zen::loop
