// The event loop's stream server (src/loop/server.hpp) on a loopback listener: clients connect
// with blocking connect() (the kernel completes the handshake from the backlog, so nothing
// waits on the loop), and the loop is turned by hand as in the transport tests.
#include <gtest/gtest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "loop/event_loop.hpp"
#include "loop/server.hpp"
#include "loop/transport.hpp"
#include "net/io.hpp"
#include "net/listener.hpp"

namespace zen {
namespace {

using namespace std::chrono_literals;

struct Record {
    int made = 0;
    std::vector<std::string> lost;  // each connection_lost's error
};

// Echoes what it receives, on its own transport.
class EchoProtocol : public loop::Protocol {
public:
    explicit EchoProtocol(Record& record) : record_(record) {}
    void connection_made(loop::Transport& transport) override {
        transport_ = &transport;
        ++record_.made;
    }
    void data_received(std::string_view data) override { transport_->write(data); }
    void connection_lost(std::string_view error) override { record_.lost.emplace_back(error); }

private:
    Record& record_;
    loop::Transport* transport_ = nullptr;
};

class LoopServer : public ::testing::Test {
protected:
    void SetUp() override {
        auto opened = open_listener("127.0.0.1", 0, 16);
        ASSERT_TRUE(opened) << opened.error();
        listener_ = std::move(opened).value();
        server_.emplace(
            loop_, listener_, [this] { return std::make_unique<EchoProtocol>(record_); },
            [this](const AcceptOutcome& outcome) { problems_.push_back(outcome.status); });
        ASSERT_TRUE(server_->start());
    }

    Fd connect_client() {
        Fd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_port = htons(listener_.port);
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        EXPECT_EQ(::connect(fd.get(), reinterpret_cast<const sockaddr*>(&address), sizeof address), 0);
        set_nonblocking(fd.get());
        return fd;
    }
    static std::string read_some(int fd) {
        char buffer[4096];
        const ssize_t n = ::recv(fd, buffer, sizeof buffer, 0);
        return n > 0 ? std::string(buffer, static_cast<std::size_t>(n)) : std::string();
    }

    // Turns the loop until `done`. Loopback delivers within a turn or two; the bound only keeps
    // a broken server from hanging the test.
    bool turn_until(const std::function<bool()>& done) {
        for (int turns = 0; turns < 100'000; ++turns) {
            if (done()) return true;
            loop_.call_soon([this] { loop_.stop(); });
            if (!loop_.run()) return false;
        }
        return done();
    }

    // Runs until the server stops the loop itself; a watchdog fails the test instead of hanging.
    bool run_until_the_server_stops_it() {
        bool timed_out = false;
        const loop::TimerHandle watchdog = loop_.call_later(5s, [&] {
            timed_out = true;
            loop_.stop();
        });
        EXPECT_TRUE(loop_.run());
        loop_.cancel(watchdog);
        return !timed_out;
    }

    loop::EventLoop loop_;
    Listener listener_;
    Record record_;
    std::vector<AcceptStatus> problems_;
    std::optional<loop::Server> server_;
};

TEST_F(LoopServer, GivesEachClientATransportAndAProtocolOfItsOwn) {
    Fd first = connect_client();
    Fd second = connect_client();
    ASSERT_TRUE(turn_until([&] { return record_.made == 2; }));
    ASSERT_EQ(::send(first.get(), "one", 3, 0), 3);
    ASSERT_EQ(::send(second.get(), "two", 3, 0), 3);
    std::string got_first, got_second;
    ASSERT_TRUE(turn_until([&] {
        got_first += read_some(first.get());
        got_second += read_some(second.get());
        return got_first.size() >= 3 && got_second.size() >= 3;
    }));
    EXPECT_EQ(got_first, "one");  // each echo on its own connection
    EXPECT_EQ(got_second, "two");
    EXPECT_TRUE(problems_.empty());
}

// close() stops accepting, but the loop runs on while a connection is open; close_clients()
// asks each protocol to finish (by default: close once sent), and the loop stops once the last
// one is gone.
TEST_F(LoopServer, StopsTheLoopOnceClosedAndTheLastConnectionIsGone) {
    Fd client = connect_client();
    ASSERT_TRUE(turn_until([&] { return record_.made == 1; }));
    server_->close();
    Fd late = connect_client();  // in the backlog, never accepted now
    loop_.call_soon([this] { server_->close_clients(); });
    EXPECT_TRUE(run_until_the_server_stops_it());
    EXPECT_EQ(record_.made, 1);
    EXPECT_EQ(record_.lost, (std::vector<std::string>{""}));
    // The client sees its connection end.
    char byte;
    EXPECT_TRUE(turn_until([&] { return ::recv(client.get(), &byte, 1, 0) == 0; }));
}

TEST_F(LoopServer, AbortClientsCutsEveryConnectionWithTheError) {
    Fd first = connect_client();
    Fd second = connect_client();
    ASSERT_TRUE(turn_until([&] { return record_.made == 2; }));
    server_->close();
    server_->abort_clients("closed as the server stops");
    EXPECT_EQ(record_.lost, (std::vector<std::string>{"closed as the server stops", "closed as the server stops"}));
    EXPECT_TRUE(run_until_the_server_stops_it());  // the transports are removed on the next turn
}

}  // namespace
}  // namespace zen
