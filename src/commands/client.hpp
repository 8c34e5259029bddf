// `zen client`: the book's client.py — three questions in random order, each printed with its
// answer; -e sends a truncated question and hangs up.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace CLI {
class App;
}

namespace zen {

struct ClientOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = 1060;
    bool cause_error = false;
    std::chrono::milliseconds timeout{10'000};
};

CLI::App* add_client_command(CLI::App& zen, ClientOptions& options);
int run_client(const ClientOptions& options);

}  // namespace zen
