#include "commands/client.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <fcntl.h>
#include <sys/time.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <iostream>
#include <random>
#include <vector>

#include "base/cli.hpp"
#include "net/address.hpp"
#include "net/connector.hpp"
#include "net/fd.hpp"
#include "net/io.hpp"
#include "proto/aphorisms.hpp"
#include "proto/bytes_repr.hpp"

namespace zen {

namespace {

void fail(std::string_view message) { std::cerr << "zen client: " << message << '\n'; }

// Reads up to and including the first '.', as the book's recv_until(sock, b'.').
Result<std::string> receive_answer(int fd) {
    std::string answer;
    char buffer[4096];
    while (answer.find('.') == std::string::npos) {
        const IoResult got = receive_some(fd, buffer, sizeof buffer);
        if (got.status == IoStatus::ok) {
            answer.append(buffer, got.bytes);
        } else if (got.status == IoStatus::eof) {
            return Error{"the server closed the connection" +
                         (answer.empty() ? std::string(" without answering") : " after sending " + bytes_repr(answer))};
        } else if (got.status == IoStatus::would_block) {
            return Error{"timed out waiting for an answer"};
        } else {
            return Error{errno_text(got.error)};
        }
    }
    return answer;
}

}  // namespace

CLI::App* add_client_command(CLI::App& zen, ClientOptions& options) {
    CLI::App* client = zen.add_subcommand("client", "Ask a Zen server three questions (the book's client.py)");
    client->add_option("host", options.host, "server address: an IP address or a name")->capture_default_str();
    client->add_option("-p,--port", options.port, "TCP port")->transform(port_number(1))->capture_default_str();
    client->add_flag("-e", options.cause_error, "cause an error: send a truncated question and hang up");
    add_seconds_option(*client, "--timeout", options.timeout, "give up on connecting or on an answer after this long",
                       0.001);
    return client;
}

int run_client(const ClientOptions& options) {
    if (auto addresses = resolve(options.host, options.port, false); !addresses) {
        fail(addresses.error());
        return 2;
    }
    auto connection = connect_to(options.host, options.port, options.timeout);
    if (!connection) {
        fail(connection.error());
        return 1;
    }
    const Fd& fd = connection->fd;

    if (options.cause_error) {
        const std::string_view question = book_aphorisms[0].question;
        const std::string_view truncated = question.substr(0, question.size() - 1);
        if (auto sent = send_all(fd.get(), truncated); !sent) {
            fail("cannot send: " + sent.error());
            return 1;
        }
        std::cout << "Sent " << bytes_repr(truncated) << " and hung up before the '?'" << std::endl;
        return 0;
    }

    std::vector<Aphorism> questions(std::begin(book_aphorisms), std::end(book_aphorisms));
    std::shuffle(questions.begin(), questions.end(), std::mt19937{std::random_device{}()});
    for (const Aphorism& aphorism : questions) {
        if (auto sent = send_all(fd.get(), aphorism.question); !sent) {
            fail("cannot send " + bytes_repr(aphorism.question) + ": " + sent.error());
            return 1;
        }
        auto answer = receive_answer(fd.get());
        if (!answer) {
            fail(bytes_repr(aphorism.question) + ": " + answer.error());
            return 1;
        }
        std::cout << bytes_repr(aphorism.question) << ' ' << bytes_repr(*answer) << std::endl;
    }
    return 0;
}

}  // namespace zen
