// The asyncio-style Transport (src/loop/transport.hpp) on a real EventLoop and a real
// socketpair: the test holds the peer's end and reads or writes it by hand between turns of the
// loop, so what crossed the socket, and when, is seen exactly. A turn is run by a call_soon()
// that stops the loop (the loop then waits 0 ms: whatever is ready now is handled, nothing
// waits). A send buffer made small lets a write fill the socket without a huge payload.
#include <gtest/gtest.h>

#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "loop/event_loop.hpp"
#include "loop/transport.hpp"
#include "net/listener.hpp"

namespace zen {
namespace {

using namespace std::chrono_literals;

// What the protocol saw, in order, kept outside it (the transport owns the protocol).
struct Record {
    std::vector<std::string> events;  // "made", "data", "eof", "pause", "resume", "lost", "closed"
    std::string received;
    int paused = 0;
    int resumed = 0;
    int eofs = 0;
    int lost = 0;
    std::string lost_error;
    std::size_t queued_at_pause = 0;
    std::size_t queued_at_resume = 0;
    std::function<void(loop::Transport&, std::string_view)> on_data;  // what data_received does
    std::function<void(loop::Transport&)> on_resume;

    int count(std::string_view event) const {
        return static_cast<int>(std::count(events.begin(), events.end(), event));
    }
};

class RecordingProtocol : public loop::Protocol {
public:
    explicit RecordingProtocol(Record& record) : record_(record) {}
    void connection_made(loop::Transport& transport) override {
        transport_ = &transport;
        record_.events.push_back("made");
    }
    void data_received(std::string_view data) override {
        record_.events.push_back("data");
        record_.received.append(data);
        if (record_.on_data) record_.on_data(*transport_, data);
    }
    void eof_received() override {
        record_.events.push_back("eof");
        ++record_.eofs;
    }
    void connection_lost(std::string_view error) override {
        record_.events.push_back("lost");
        ++record_.lost;
        record_.lost_error = error;
    }
    void pause_writing() override {
        record_.events.push_back("pause");
        ++record_.paused;
        record_.queued_at_pause = transport_->write_buffer_size();
    }
    void resume_writing() override {
        record_.events.push_back("resume");
        ++record_.resumed;
        record_.queued_at_resume = transport_->write_buffer_size();
        if (record_.on_resume) record_.on_resume(*transport_);
    }

private:
    Record& record_;
    loop::Transport* transport_ = nullptr;
};

// Bytes that show a loss or a reordering: no short period.
std::string payload(std::size_t size) {
    std::string out(size, '\0');
    for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<char>('a' + (i * 7 + i / 251) % 26);
    return out;
}

class Transport : public ::testing::Test {
protected:
    // The transport's end is fds[0], the test's (the peer's) fds[1]; both non-blocking.
    void open(int type = SOCK_STREAM, bool small_buffers = false) {
        int fds[2] = {-1, -1};
        ASSERT_EQ(::socketpair(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
        if (small_buffers) {
            // The kernel doubles these and keeps a floor: a few KiB the socket takes before a
            // send would block. The peer's receive buffer too, though AF_UNIX mostly charges
            // the sender.
            const int size = 4096;
            ASSERT_EQ(::setsockopt(fds[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof size), 0);
            ASSERT_EQ(::setsockopt(fds[1], SOL_SOCKET, SO_RCVBUF, &size, sizeof size), 0);
        }
        peer_.reset(fds[1]);
        transport_ = std::make_unique<loop::Transport>(loop_, AcceptedClient{Fd(fds[0]), SocketAddress{}},
                                                 std::make_unique<RecordingProtocol>(record_));
        transport_->set_on_closed([this] { record_.events.push_back("closed"); });
        transport_->start();
    }
    loop::Transport& transport() { return *transport_; }

    // One turn of the loop: what is ready now is handled, nothing waits.
    void turn() {
        loop_.call_soon([this] { loop_.stop(); });
        ASSERT_TRUE(loop_.run());
    }

    // Everything the peer can read now; peer_eof_ once it reads the end.
    std::string peer_read() {
        std::string got;
        char buffer[65536];
        for (;;) {
            const ssize_t n = ::recv(peer_.get(), buffer, sizeof buffer, 0);
            if (n > 0) {
                got.append(buffer, static_cast<std::size_t>(n));
                continue;
            }
            if (n == 0) peer_eof_ = true;
            break;  // EOF, or nothing more for now (EAGAIN)
        }
        return got;
    }
    // What one recv() returns (one record on a SOCK_SEQPACKET pair).
    std::string peer_read_once() {
        char buffer[65536];
        const ssize_t n = ::recv(peer_.get(), buffer, sizeof buffer, 0);
        return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
    }
    std::size_t peer_readable() const {
        int n = 0;
        ::ioctl(peer_.get(), FIONREAD, &n);
        return static_cast<std::size_t>(n);
    }
    void peer_write(std::string_view data) {
        ASSERT_EQ(::send(peer_.get(), data.data(), data.size(), MSG_NOSIGNAL), static_cast<ssize_t>(data.size()));
    }

    // Reads the peer dry and turns the loop, until `done` (false if it never came: the bound is
    // far above what any test here needs, and each turn waits for nothing).
    bool pump(std::string& got, const std::function<bool()>& done) {
        for (int turns = 0; turns < 100'000; ++turns) {
            got += peer_read();
            if (done()) return true;
            turn();
        }
        return false;
    }

    // Declared first, so destroyed last: the transport removes its watch from it.
    loop::EventLoop loop_;
    Record record_;
    std::unique_ptr<loop::Transport> transport_;
    Fd peer_;
    bool peer_eof_ = false;
};

// The events (EPOLLIN, EPOLLOUT) an epoll set of this process watches `fd` for, read from
// /proc/self/fdinfo, since the loop keeps its epoll descriptor to itself; -1 when none does.
int watched_events(int fd) {
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
        std::error_code error;
        if (std::filesystem::read_symlink(entry.path(), error) != "anon_inode:[eventpoll]") continue;
        std::ifstream info("/proc/self/fdinfo/" + entry.path().filename().string());
        std::string line;
        while (std::getline(info, line)) {
            int target = -1;
            unsigned events = 0;
            if (std::sscanf(line.c_str(), "tfd: %d events: %x", &target, &events) == 2 && target == fd) {
                return static_cast<int>(events & (EPOLLIN | EPOLLOUT));
            }
        }
    }
    return -1;
}

constexpr std::size_t big = 256 * 1024;  // far more than a small-buffered socket takes

// --- connecting and reading -----------------------------------------------------------------

TEST_F(Transport, StartCallsConnectionMadeThenDeliversWhatThePeerSends) {
    open();
    EXPECT_EQ(record_.events, (std::vector<std::string>{"made"}));
    EXPECT_TRUE(record_.received.empty());  // nothing is read before the loop runs
    peer_write("Beautiful is better than?");
    turn();
    EXPECT_EQ(record_.received, "Beautiful is better than?");
    EXPECT_EQ(record_.events, (std::vector<std::string>{"made", "data"}));
}

TEST_F(Transport, EofFromThePeerCallsEofReceivedOnceAndWritingGoesOn) {
    open();
    peer_write("last words");
    ASSERT_EQ(::shutdown(peer_.get(), SHUT_WR), 0);
    turn();
    turn();
    turn();
    EXPECT_EQ(record_.received, "last words");
    EXPECT_EQ(record_.eofs, 1);  // not again on later turns: reading stopped
    EXPECT_TRUE(transport().eof_received());
    EXPECT_FALSE(transport().is_closing());
    EXPECT_EQ(record_.lost, 0);
    transport().write("Ugly.");  // a half-closed peer still reads
    EXPECT_EQ(peer_read(), "Ugly.");
}

TEST_F(Transport, PauseReadingStopsDataReceivedAndResumeRestartsIt) {
    open();
    transport().pause_reading();
    peer_write("held");
    turn();
    turn();
    EXPECT_EQ(record_.count("data"), 0);  // the bytes wait in the socket
    transport().resume_reading();
    turn();
    EXPECT_EQ(record_.received, "held");
    // Paused from inside data_received: the next bytes wait too.
    record_.on_data = [](loop::Transport& t, std::string_view) { t.pause_reading(); };
    peer_write("more");
    turn();
    EXPECT_EQ(record_.received, "heldmore");
    peer_write("waiting");
    turn();
    turn();
    EXPECT_EQ(record_.received, "heldmore");
    record_.on_data = nullptr;
    transport().resume_reading();
    turn();
    EXPECT_EQ(record_.received, "heldmorewaiting");
}

// Paused reading hides the peer's EOF as well: eof_received comes once reading resumes.
TEST_F(Transport, EofWaitsForReadingToResume) {
    open();
    transport().pause_reading();
    ASSERT_EQ(::shutdown(peer_.get(), SHUT_WR), 0);
    turn();
    EXPECT_EQ(record_.eofs, 0);
    transport().resume_reading();
    turn();
    EXPECT_EQ(record_.eofs, 1);
}

// read_now() takes in what the socket holds without the loop (a stopping server's last look).
TEST_F(Transport, ReadNowReadsWhatIsThereWithoutTheLoop) {
    open();
    EXPECT_FALSE(transport().read_now());  // nothing there, no EOF
    peer_write("Beautiful is ");
    EXPECT_FALSE(transport().read_now());
    EXPECT_EQ(record_.received, "Beautiful is ");
    peer_write("better than?");
    ASSERT_EQ(::shutdown(peer_.get(), SHUT_WR), 0);
    EXPECT_TRUE(transport().read_now());
    EXPECT_EQ(record_.received, "Beautiful is better than?");
    EXPECT_EQ(record_.eofs, 1);
}

// --- writing --------------------------------------------------------------------------------

// Write first: with nothing queued a write goes straight to the socket, before the loop runs.
TEST_F(Transport, AWriteWithNothingQueuedIsSentAtOnce) {
    open();
    transport().write("Ugly.");
    EXPECT_EQ(peer_readable(), 5u);
    EXPECT_EQ(peer_read(), "Ugly.");
    EXPECT_EQ(transport().write_buffer_size(), 0u);
    transport().write("");  // nothing to send: nothing happens
    EXPECT_EQ(transport().write_buffer_size(), 0u);
}

TEST_F(Transport, WhatTheSocketCannotTakeIsQueuedAndSentAsThePeerReads) {
    open(SOCK_STREAM, true);
    transport().set_write_buffer_limits(4 * big, 0);  // no pause: this test is about the queue
    const std::string data = payload(big);
    transport().write(data);
    const std::size_t queued = transport().write_buffer_size();
    EXPECT_GT(queued, 0u);
    EXPECT_LT(queued, big);  // the socket took some at once
    EXPECT_EQ(peer_readable(), big - queued);
    turn();
    turn();
    EXPECT_EQ(transport().write_buffer_size(), queued);  // the peer read nothing: nothing moves
    transport().write("tail");  // behind the queue, never ahead of it
    EXPECT_EQ(transport().write_buffer_size(), queued + 4);
    std::string got;
    ASSERT_TRUE(pump(got, [&] { return got.size() == big + 4; }));
    EXPECT_EQ(got, data + "tail");
    EXPECT_EQ(transport().write_buffer_size(), 0u);
    EXPECT_EQ(record_.paused, 0);
}

// The marks: pause_writing() once the queue is above the high mark (not at it), then nothing
// more until it has drained to the low mark or below, when resume_writing() comes once.
TEST_F(Transport, PausesAboveTheHighMarkAndResumesAtTheLowMark) {
    open(SOCK_STREAM, true);
    constexpr std::size_t high = 64 * 1024;
    constexpr std::size_t low = 16 * 1024;
    transport().set_write_buffer_limits(high, low);
    const std::string data = payload(big);
    transport().write(data);
    EXPECT_EQ(record_.paused, 1);  // at once, inside write()
    EXPECT_GT(record_.queued_at_pause, high);
    transport().write("x");
    EXPECT_EQ(record_.paused, 1);  // once, not per write
    std::string got;
    ASSERT_TRUE(pump(got, [&] { return record_.resumed > 0; }));
    EXPECT_LE(record_.queued_at_resume, low);
    EXPECT_GT(got.size(), big + 1 - high);  // the peer read its way down to the mark
    ASSERT_TRUE(pump(got, [&] { return got.size() == big + 1; }));
    EXPECT_EQ(got, data + "x");
    EXPECT_EQ(record_.paused, 1);
    EXPECT_EQ(record_.resumed, 1);
}

// The high mark is exact: a queue of `high` bytes is not above it; one byte more is.
TEST_F(Transport, AQueueAtTheHighMarkIsNotAboveIt) {
    open(SOCK_STREAM, true);
    transport().set_write_buffer_limits(4 * big, 0);
    transport().write(payload(big));
    const std::size_t queued = transport().write_buffer_size();
    ASSERT_GT(queued, 0u);
    // From here every write is queued whole (the socket is full and the peer does not read).
    transport().set_write_buffer_limits(queued + 10, 0);
    transport().write("0123456789");
    EXPECT_EQ(transport().write_buffer_size(), queued + 10);
    EXPECT_EQ(record_.paused, 0);
    transport().write("!");
    EXPECT_EQ(record_.paused, 1);
}

// A protocol may write more from resume_writing(); the bytes follow the rest in order.
TEST_F(Transport, WritesMadeFromResumeWritingFollowInOrder) {
    open(SOCK_STREAM, true);
    transport().set_write_buffer_limits(1024, 0);
    const std::string first = payload(big);
    const std::string second = "and then some";
    record_.on_resume = [&](loop::Transport& t) { t.write(second); };
    transport().write(first);
    ASSERT_EQ(record_.paused, 1);
    std::string got;
    ASSERT_TRUE(pump(got, [&] { return got.size() >= first.size() + second.size(); }));
    EXPECT_EQ(got, first + second);
    EXPECT_EQ(record_.resumed, 1);
}

// Writes made inside data_received() are corked: nothing leaves while it runs, and all of them
// leave together once it returns. SOCK_SEQPACKET keeps each send a record of its own, so one
// recv() shows how many sends there were.
TEST_F(Transport, WritesInsideDataReceivedLeaveInOneSend) {
    open(SOCK_SEQPACKET);
    std::vector<std::size_t> readable_while_writing;
    record_.on_data = [&](loop::Transport& t, std::string_view) {
        t.write("Ugly.");
        readable_while_writing.push_back(peer_readable());
        t.write("Implicit.");
        readable_while_writing.push_back(peer_readable());
        t.write("Complex.");
    };
    peer_write("Beautiful is better than?Explicit is better than?Simple is better than?");
    turn();
    EXPECT_EQ(readable_while_writing, (std::vector<std::size_t>{0, 0}));
    EXPECT_EQ(peer_read_once(), "Ugly.Implicit.Complex.");
    EXPECT_EQ(peer_read_once(), "");  // and nothing after it
    EXPECT_EQ(transport().write_buffer_size(), 0u);
}

// The same on a stream socket: nothing is readable while data_received() runs, all of it after.
TEST_F(Transport, WritesInsideDataReceivedWaitUntilItReturns) {
    open();
    std::size_t readable_while_writing = 99;
    record_.on_data = [&](loop::Transport& t, std::string_view) {
        t.write("Ugly.");
        t.write("Implicit.");
        readable_while_writing = peer_readable();
    };
    peer_write("two questions");
    turn();
    EXPECT_EQ(readable_while_writing, 0u);
    EXPECT_EQ(peer_read(), "Ugly.Implicit.");
}

// Corked writes are held against the marks only once they are sent: a protocol with a high
// mark of 0 (paused by any byte left over, as the framework's is) is not paused by answers
// that all leave in the send after data_received().
TEST_F(Transport, CorkedWritesAreHeldAgainstTheMarksOnlyAfterTheSend) {
    open();
    transport().set_write_buffer_limits(0, 0);
    record_.on_data = [](loop::Transport& t, std::string_view) {
        t.write("Ugly.");
        t.write("Implicit.");
    };
    peer_write("two questions");
    turn();
    EXPECT_EQ(peer_read(), "Ugly.Implicit.");
    EXPECT_EQ(record_.paused, 0);
}

// The loop is level-triggered: a transport watching for what it does not wait for (reading
// while paused or after EOF, writing with nothing queued) would wake every turn at once, a
// spin that no callback shows. So the watch is checked in the kernel's own epoll set.
TEST_F(Transport, WatchesOnlyForWhatItWaitsFor) {
    open(SOCK_STREAM, true);
    const int fd = transport().fd();
    EXPECT_EQ(watched_events(fd), EPOLLIN);
    transport().set_write_buffer_limits(4 * big, 0);
    transport().write(payload(big));
    EXPECT_EQ(watched_events(fd), EPOLLIN | EPOLLOUT);
    transport().pause_reading();
    EXPECT_EQ(watched_events(fd), EPOLLOUT);
    std::string got;
    ASSERT_TRUE(pump(got, [&] { return got.size() == big; }));
    EXPECT_EQ(watched_events(fd), 0);  // nothing to read or send: nothing can wake the loop
    transport().resume_reading();
    EXPECT_EQ(watched_events(fd), EPOLLIN);
    ASSERT_EQ(::shutdown(peer_.get(), SHUT_WR), 0);
    turn();
    ASSERT_EQ(record_.eofs, 1);
    EXPECT_EQ(watched_events(fd), 0);  // after EOF there is nothing more to read
    transport().close();
    EXPECT_EQ(watched_events(fd), -1);  // closed: no longer watched at all
}

// --- ending ---------------------------------------------------------------------------------

TEST_F(Transport, WriteEofWithNothingQueuedShutsTheWriteSideAtOnce) {
    open();
    transport().write("Ugly.");
    transport().write_eof();
    EXPECT_EQ(peer_read(), "Ugly.");
    EXPECT_TRUE(peer_eof_);
}

// write_eof() shuts the sending side only after the queue drained: the peer reads every byte,
// then the end. Reading goes on meanwhile and after.
TEST_F(Transport, WriteEofShutsTheWriteSideOnlyOnceTheQueueDrained) {
    open(SOCK_STREAM, true);
    transport().set_write_buffer_limits(4 * big, 0);
    const std::string data = payload(big);
    transport().write(data);
    ASSERT_GT(transport().write_buffer_size(), 0u);
    transport().write_eof();
    transport().write("ignored");  // nothing may follow the end
    std::string got = peer_read();
    EXPECT_FALSE(peer_eof_);  // the queue is still waiting
    ASSERT_TRUE(pump(got, [&] { return peer_eof_; }));
    EXPECT_EQ(got, data);
    EXPECT_FALSE(transport().closed());
    EXPECT_EQ(record_.lost, 0);
    peer_write("after the end");
    turn();
    EXPECT_EQ(record_.received, "after the end");
}

TEST_F(Transport, CloseWithNothingQueuedLosesTheConnectionAtOnce) {
    open();
    transport().close();
    EXPECT_TRUE(transport().closed());
    EXPECT_EQ(record_.events, (std::vector<std::string>{"made", "lost", "closed"}));
    EXPECT_EQ(record_.lost_error, "");  // an orderly close
    peer_read();
    EXPECT_TRUE(peer_eof_);
    transport().close();  // again: nothing more
    EXPECT_EQ(record_.lost, 1);
}

// close() sends what is queued first, then connection_lost("") and the on_closed callback.
TEST_F(Transport, CloseSendsWhatIsQueuedThenLosesTheConnection) {
    open(SOCK_STREAM, true);
    transport().set_write_buffer_limits(4 * big, 0);
    const std::string data = payload(big);
    transport().write(data);
    ASSERT_GT(transport().write_buffer_size(), 0u);
    transport().close();
    EXPECT_TRUE(transport().is_closing());
    EXPECT_FALSE(transport().closed());
    EXPECT_EQ(record_.lost, 0);  // not while bytes wait
    transport().write("ignored");
    std::string got;
    ASSERT_TRUE(pump(got, [&] { return peer_eof_; }));
    EXPECT_EQ(got, data);
    EXPECT_TRUE(transport().closed());
    EXPECT_EQ(record_.lost, 1);
    EXPECT_EQ(record_.lost_error, "");
    EXPECT_EQ(record_.count("data"), 0);
    ASSERT_GE(record_.events.size(), 2u);
    EXPECT_EQ(record_.events[record_.events.size() - 2], "lost");  // connection_lost last...
    EXPECT_EQ(record_.events.back(), "closed");                      // ...then on_closed
}

// abort() closes now: what is queued never leaves.
TEST_F(Transport, AbortDropsTheQueue) {
    open(SOCK_STREAM, true);
    transport().set_write_buffer_limits(4 * big, 0);
    transport().write(payload(big));
    const std::size_t queued = transport().write_buffer_size();
    ASSERT_GT(queued, 0u);
    transport().abort("closed as the server stops");
    EXPECT_TRUE(transport().closed());
    EXPECT_EQ(record_.lost, 1);
    EXPECT_EQ(record_.lost_error, "closed as the server stops");
    EXPECT_EQ(record_.events.back(), "closed");
    std::string got;
    ASSERT_TRUE(pump(got, [&] { return peer_eof_; }));
    EXPECT_EQ(got.size(), big - queued);  // only what the socket had taken
    transport().write("ignored");
    transport().abort();
    EXPECT_EQ(record_.lost, 1);  // connection_lost comes once
}

// A send that fails ends the connection with the error (here the peer is gone: EPIPE).
TEST_F(Transport, AFailedSendLosesTheConnectionWithTheError) {
    open();
    peer_.reset();
    transport().write("Ugly.");
    EXPECT_TRUE(transport().closed());
    EXPECT_EQ(record_.lost, 1);
    EXPECT_NE(record_.lost_error, "");
}

}  // namespace
}  // namespace zen
