// What chapter 5's two demos share: a server that takes one connection and a client that
// connects, each printing what it does, and the common command line ([HOST] [-c] [-p PORT]).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "base/clock.hpp"
#include "base/result.hpp"
#include "net/connector.hpp"

namespace CLI {
class App;
}

namespace zen {

struct DemoOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = 1060;
    bool client = false;
    std::chrono::milliseconds timeout{30'000};  // the peer silent this long, per read
    std::chrono::milliseconds time_limit{0};    // the whole exchange, from the accept; zero: none
};

void add_demo_options(CLI::App& app, DemoOptions& options);

// Listens on HOST:PORT, prints "Listening at ...", accepts one client, prints "Accepted
// connection from ...", and closes the listener.
Result<Connection> accept_one_client(const DemoOptions& options);

// Connects and prints "Connected to ...".
Result<Connection> connect_as_client(const DemoOptions& options);

// The demo's run: checks the command line (exit 2 with one line on a bad one), then runs the
// server, or the client with -c.
int run_demo(std::string_view name, const DemoOptions& options, const std::function<int()>& serve,
             const std::function<int()>& send);
// One line "zen NAME: message" on stderr; returns exit code 1.
int demo_failure(std::string_view name, std::string_view message);

// What the one-shot server allows its one client: --timeout of silence at each read, and
// --time-limit for the whole exchange (a byte every few seconds stays within the first).
class ExchangeLimits {
public:
    // Starts the --time-limit clock: call it once the client is accepted.
    explicit ExchangeLimits(const DemoOptions& options);

    // Receives up to capacity bytes: >0 read, 0 at EOF; an error, the silence or the time limit
    // as an Error naming its option.
    Result<std::size_t> receive(int fd, char* buffer, std::size_t capacity) const;

private:
    std::chrono::milliseconds timeout_;
    std::chrono::milliseconds time_limit_;
    TimePoint deadline_;
};

}  // namespace zen
