#include "commands/streamer.hpp"

#include <sys/socket.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "base/cli.hpp"
#include "net/io.hpp"
#include "proto/bytes_repr.hpp"

namespace zen {

namespace {

constexpr std::string_view lines[] = {
    "Beautiful is better than ugly.\n",
    "Explicit is better than implicit.\n",
    "Simple is better than complex.\n",
};

int fail(std::string_view message) { return demo_failure("streamer", message); }

int serve(const StreamerOptions& options) {
    auto connection = accept_one_client(options.demo);
    if (!connection) return fail(connection.error());
    const ExchangeLimits limits(options.demo);
    const int fd = connection->fd.get();
    ::shutdown(fd, SHUT_WR);  // we will send nothing: the client may see our EOF at once
    EofFramer framer(options.max_message);
    char buffer[8192];
    for (;;) {
        auto got = limits.receive(fd, buffer, sizeof buffer);
        if (!got) return fail(got.error());
        if (*got == 0) {
            std::cout << "Received zero bytes - end of file" << std::endl;
            break;
        }
        std::cout << "Received " << *got << " bytes" << std::endl;
        if (!framer.feed({buffer, *got})) {
            return fail("the message is longer than --max-message (" + std::to_string(options.max_message) + " bytes)");
        }
    }
    std::cout << "Message:\n\n" << framer.message() << std::endl;
    return 0;
}

int send_lines(const StreamerOptions& options) {
    auto connection = connect_as_client(options.demo);
    if (!connection) return fail(connection.error());
    const int fd = connection->fd.get();
    ::shutdown(fd, SHUT_RD);
    std::cout << "Shut down our receiving side: we only send" << std::endl;
    std::size_t total = 0;
    for (const std::string_view line : lines) {
        if (auto sent = send_all(fd, line); !sent) return fail("cannot send: " + sent.error());
        total += line.size();
        std::cout << "Sent " << bytes_repr(line) << std::endl;
    }
    connection->fd.reset();
    std::cout << "Closed the socket after " << total << " bytes: the server reads end of file" << std::endl;
    return 0;
}

}  // namespace

CLI::App* add_streamer_command(CLI::App& zen, StreamerOptions& options) {
    CLI::App* app = zen.add_subcommand("streamer", "Chapter 5: a message framed by end of file (streamer.py)");
    add_demo_options(*app, options.demo);
    app->add_option("--max-message", options.max_message, "the longest message the server keeps, in bytes")
        ->transform(number_range(std::size_t{1}, std::size_t{1} << 32))
        ->capture_default_str();
    return app;
}

int run_streamer(const StreamerOptions& options) {
    return run_demo("streamer", options.demo, [&] { return serve(options); }, [&] { return send_lines(options); });
}

}  // namespace zen
