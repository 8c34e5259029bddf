// What chapter 5's two demos share: a server that takes one connection and a client that
// connects, each printing what it does, and the common command line ([HOST] [-c] [-p PORT]).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

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
    std::chrono::milliseconds timeout{30'000};
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

// Receives up to capacity bytes: >0 read, 0 at EOF; an error (or the timeout) as an Error.
Result<std::size_t> receive_bytes(int fd, char* buffer, std::size_t capacity);

}  // namespace zen
