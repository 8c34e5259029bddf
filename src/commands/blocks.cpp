#include "commands/blocks.hpp"

#include <sys/socket.h>

#include <CLI/CLI.hpp>
#include <iostream>

#include "base/cli.hpp"
#include "net/io.hpp"
#include "proto/bytes_repr.hpp"

namespace zen {

namespace {

constexpr std::string_view messages[] = {
    "Beautiful is better than ugly.",
    "Explicit is better than implicit.",
    "Simple is better than complex.",
};

int fail(std::string_view message) { return demo_failure("blocks", message); }

int serve(const BlocksOptions& options) {
    auto connection = accept_one_client(options.demo);
    if (!connection) return fail(connection.error());
    const ExchangeLimits limits(options.demo);
    const int fd = connection->fd.get();
    ::shutdown(fd, SHUT_WR);
    BlockDecoder decoder(options.max_block);
    char buffer[65536];
    for (;;) {
        switch (decoder.next()) {
            case BlockDecoder::Event::block:
                std::cout << "Block says: " << bytes_repr(decoder.block(), 4096) << std::endl;
                continue;
            case BlockDecoder::Event::end:
                std::cout << "Received the zero-length block: end of the stream" << std::endl;
                return 0;
            case BlockDecoder::Event::too_large:
                return fail("a block of " + std::to_string(decoder.announced()) +
                            " bytes was announced; the limit is " + std::to_string(options.max_block) +
                            " bytes (--max-block)");
            case BlockDecoder::Event::need_data:
                break;
        }
        auto got = limits.receive(fd, buffer, sizeof buffer);
        if (!got) return fail(got.error());
        if (*got == 0) {
            if (decoder.in_block()) {
                return fail("the connection closed with " + std::to_string(decoder.missing()) +
                            " bytes left in this block");
            }
            return fail("the connection closed before the zero-length block that ends the stream");
        }
        try {
            decoder.feed({buffer, *got});
        } catch (const std::bad_alloc&) {
            return fail("out of memory holding a block of " + std::to_string(decoder.announced()) + " bytes");
        }
    }
}

int send_blocks(const BlocksOptions& options) {
    auto connection = connect_as_client(options.demo);
    if (!connection) return fail(connection.error());
    const int fd = connection->fd.get();
    ::shutdown(fd, SHUT_RD);
    std::cout << "Shut down our receiving side: we only send" << std::endl;
    for (const std::string_view message : messages) {
        // send_all: the book's blocks.py calls send(), which may send only part of a block.
        if (auto sent = send_all(fd, encode_block(message)); !sent) return fail("cannot send: " + sent.error());
        std::cout << "Sent a block of " << message.size() << " bytes: " << bytes_repr(message) << std::endl;
    }
    if (auto sent = send_all(fd, encode_block_header(0)); !sent) return fail("cannot send: " + sent.error());
    std::cout << "Sent the zero-length block that ends the stream" << std::endl;
    connection->fd.reset();
    std::cout << "Closed the socket" << std::endl;
    return 0;
}

}  // namespace

CLI::App* add_blocks_command(CLI::App& zen, BlocksOptions& options) {
    CLI::App* app = zen.add_subcommand("blocks", "Chapter 5: length-prefixed blocks (blocks.py)");
    add_demo_options(*app, options.demo);
    app->add_option("--max-block", options.max_block,
                    "the largest block the server accepts, in bytes; a larger one is refused before "
                    "anything is allocated for it")
        ->transform(number_range(std::size_t{1}, std::size_t{0xffffffff}))
        ->capture_default_str();
    return app;
}

int run_blocks(const BlocksOptions& options) {
    return run_demo("blocks", options.demo, [&] { return serve(options); }, [&] { return send_blocks(options); });
}

}  // namespace zen
