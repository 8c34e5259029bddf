#include "commands/one_shot.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "base/cli.hpp"
#include "net/io.hpp"
#include "net/listener.hpp"

namespace zen {

void add_demo_options(CLI::App& app, DemoOptions& options) {
    app.add_option("host", options.host, "IP address or hostname ('' for every interface)")->capture_default_str();
    app.add_flag("-c", options.client, "run as the client");
    app.add_option("-p,--port", options.port, "TCP port (for the server, 0 picks a free one)")
        ->transform(port_number(0))
        ->capture_default_str();
    add_seconds_option(app, "--timeout", options.timeout, "give up when the peer is silent this long (at each read)",
                       0.001);
    add_seconds_option(app, "--time-limit", options.time_limit,
                       "the server gives up when its client's whole exchange takes longer (0: no limit)", 0);
}

Result<Connection> accept_one_client(const DemoOptions& options) {
    if (auto addresses = resolve(options.host, options.port, true); !addresses) return Error{addresses.error()};
    auto listener = open_listener(options.host, options.port, 1);
    if (!listener) return Error{listener.error()};
    std::cout << "Run this command in another window with \"-c\" to connect" << std::endl;
    std::cout << "Listening at " << format_address(listener->bound) << std::endl;
    for (;;) {
        wait_for(listener->fd.get(), POLLIN, -1, never);
        AcceptOutcome accepted = accept_client(*listener);
        if (accepted.status == AcceptStatus::accepted) {
            ::fcntl(accepted.client.fd.get(), F_SETFL, ::fcntl(accepted.client.fd.get(), F_GETFL) & ~O_NONBLOCK);
            timeval limit{};
            limit.tv_sec = options.timeout.count() / 1000;
            limit.tv_usec = (options.timeout.count() % 1000) * 1000;
            ::setsockopt(accepted.client.fd.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
            ::setsockopt(accepted.client.fd.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
            std::cout << "Accepted connection from " << format_address(accepted.client.peer) << std::endl;
            return Connection{std::move(accepted.client.fd), accepted.client.peer};
        }
        if (accepted.status == AcceptStatus::would_block || accepted.status == AcceptStatus::client_gone) continue;
        return Error{"cannot accept: " + errno_text(accepted.error)};
    }
}

Result<Connection> connect_as_client(const DemoOptions& options) {
    auto connection = connect_to(options.host, options.port, options.timeout);
    if (!connection) return connection;
    std::cout << "Connected to " << format_address(connection->peer) << std::endl;
    return connection;
}

int demo_failure(std::string_view name, std::string_view message) {
    std::cerr << "zen " << name << ": " << message << '\n';
    return 1;
}

int run_demo(std::string_view name, const DemoOptions& options, const std::function<int()>& serve,
             const std::function<int()>& send) {
    if (options.client && options.port == 0) {
        demo_failure(name, "-c needs the server's port (-p PORT)");
        return 2;
    }
    if (auto addresses = resolve(options.host, options.port, !options.client); !addresses) {
        demo_failure(name, addresses.error());
        return 2;
    }
    return options.client ? send() : serve();
}

ExchangeLimits::ExchangeLimits(const DemoOptions& options)
    : timeout_(options.timeout),
      time_limit_(options.time_limit),
      deadline_(deadline_after(Clock::now(), options.time_limit)) {}

Result<std::size_t> ExchangeLimits::receive(int fd, char* buffer, std::size_t capacity) const {
    const TimePoint now = Clock::now();
    const TimePoint silence_deadline = deadline_after(now, timeout_);
    if (now >= deadline_ || wait_for(fd, POLLIN, -1, std::min(silence_deadline, deadline_)) != WaitOutcome::ready) {
        if (Clock::now() >= deadline_) {
            return Error{"the exchange took longer than --time-limit (" + duration_text(time_limit_) + ")"};
        }
        return Error{"timed out waiting for the peer (--timeout " + duration_text(timeout_) + ")"};
    }
    const IoResult got = receive_some(fd, buffer, capacity);
    switch (got.status) {
        case IoStatus::ok:
            return got.bytes;
        case IoStatus::eof:
            return std::size_t{0};
        case IoStatus::would_block:
            return Error{"timed out waiting for the peer (--timeout " + duration_text(timeout_) + ")"};
        case IoStatus::error:
            break;
    }
    return Error{errno_text(got.error)};
}

}  // namespace zen
