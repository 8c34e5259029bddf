// Chapter 5's demos end to end: `zen streamer` and `zen blocks` against each other and against
// Python peers written like the book's scripts, both directions, plus their limits.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <thread>

#include "support/harness.hpp"

namespace zen::test {
namespace {

const std::string peer_script = source_dir() + "/tests/interop/python_chapter5.py";

// `zen NAME -p 0` as a one-shot server (run through `wrapper` if given); returns it once it has
// said where it listens.
std::unique_ptr<Process> start_demo_server(const std::string& name, std::vector<std::string> extra, std::uint16_t& port,
                                           std::vector<std::string> wrapper = {}) {
    std::vector<std::string> argv = std::move(wrapper);
    for (const std::string& arg : {zen_binary(), name, std::string("127.0.0.1"), std::string("-p"), std::string("0")}) {
        argv.push_back(arg);
    }
    argv.insert(argv.end(), extra.begin(), extra.end());
    auto server = Process::start(argv);
    const std::regex listening(R"(Listening at \('127\.0\.0\.1', (\d+)\))");
    for (int i = 0; i < 1000; ++i) {
        std::smatch match;
        const std::string output = server->output();
        if (std::regex_search(output, match, listening)) {
            port = static_cast<std::uint16_t>(std::stoi(match[1].str()));
            return server;
        }
        std::this_thread::sleep_for(10ms);
    }
    ADD_FAILURE() << "no Listening line: " << server->output();
    return server;
}

// A Python peer server; returns it once it has written its port.
std::unique_ptr<Process> start_python_server(const std::string& mode, std::string& port) {
    const std::string port_file = ::testing::TempDir() + "zen-ch5-" + mode + "-" + std::to_string(::getpid());
    std::remove(port_file.c_str());
    auto server = Process::start({"python3", peer_script, mode, port_file});
    for (int i = 0; i < 1000 && port.empty(); ++i) {
        std::ifstream in(port_file);
        std::getline(in, port);
        if (port.empty()) std::this_thread::sleep_for(10ms);
    }
    std::remove(port_file.c_str());
    return server;
}

const std::string book_message =
    "Beautiful is better than ugly.\nExplicit is better than implicit.\nSimple is better than complex.\n";

TEST(Streamer, ZenClientToZenServer) {
    std::uint16_t port = 0;
    auto server = start_demo_server("streamer", {}, port);
    const RunResult client = run_zen({"streamer", "-c", "-p", std::to_string(port)});
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_NE(client.out.find("Sent b'Simple is better than complex.\\n'"), std::string::npos) << client.out;
    EXPECT_EQ(server->wait_exit(10s), 0) << server->output();
    const std::string output = server->output();
    EXPECT_NE(output.find("Accepted connection from ('127.0.0.1', "), std::string::npos) << output;
    EXPECT_TRUE(std::regex_search(output, std::regex(R"(Received \d+ bytes)"))) << output;
    EXPECT_NE(output.find("Received zero bytes - end of file\nMessage:\n\n" + book_message), std::string::npos)
        << output;
}

TEST(Streamer, PythonClientToZenServer) {
    std::uint16_t port = 0;
    auto server = start_demo_server("streamer", {}, port);
    const RunResult client = run_command({"python3", peer_script, "streamer-client", std::to_string(port)});
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_EQ(server->wait_exit(10s), 0) << server->output();
    EXPECT_NE(server->output().find("Message:\n\n" + book_message), std::string::npos) << server->output();
}

TEST(Streamer, ZenClientToPythonServer) {
    std::string port;
    auto server = start_python_server("streamer-server", port);
    ASSERT_FALSE(port.empty()) << server->output();
    const RunResult client = run_zen({"streamer", "-c", "-p", port});
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_EQ(server->wait_exit(10s), 0) << server->output();
    EXPECT_NE(server->output().find(
                  "Message: b'Beautiful is better than ugly.\\nExplicit is better than implicit.\\nSimple is better "
                  "than complex.\\n'"),
              std::string::npos)
        << server->output();
}

TEST(Streamer, MessageOverTheLimitIsAnErrorExitOne) {
    std::uint16_t port = 0;
    auto server = start_demo_server("streamer", {"--max-message", "20"}, port);
    run_zen({"streamer", "-c", "-p", std::to_string(port)});
    EXPECT_EQ(server->wait_exit(10s), 1) << server->output();
    EXPECT_NE(server->output().find("--max-message (20 bytes)"), std::string::npos) << server->output();
}

std::string book_block_lines() {
    return "Block says: b'Beautiful is better than ugly.'\n"
           "Block says: b'Explicit is better than implicit.'\n"
           "Block says: b'Simple is better than complex.'\n";
}

TEST(Blocks, ZenClientToZenServer) {
    std::uint16_t port = 0;
    auto server = start_demo_server("blocks", {}, port);
    const RunResult client = run_zen({"blocks", "-c", "-p", std::to_string(port)});
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_NE(client.out.find("Sent the zero-length block that ends the stream"), std::string::npos) << client.out;
    EXPECT_EQ(server->wait_exit(10s), 0) << server->output();
    EXPECT_NE(server->output().find(book_block_lines()), std::string::npos) << server->output();
}

TEST(Blocks, PythonClientToZenServer) {
    std::uint16_t port = 0;
    auto server = start_demo_server("blocks", {}, port);
    const RunResult client = run_command({"python3", peer_script, "blocks-client", std::to_string(port)});
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_EQ(server->wait_exit(10s), 0) << server->output();
    EXPECT_NE(server->output().find(book_block_lines()), std::string::npos) << server->output();
}

TEST(Blocks, ZenClientToPythonServer) {
    std::string port;
    auto server = start_python_server("blocks-server", port);
    ASSERT_FALSE(port.empty()) << server->output();
    const RunResult client = run_zen({"blocks", "-c", "-p", port});
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_EQ(server->wait_exit(10s), 0) << server->output();
    EXPECT_NE(server->output().find(book_block_lines() + "End of blocks"), std::string::npos) << server->output();
}

TEST(Blocks, ABlockArrivingOneByteAtATimeIsPrintedWhole) {
    std::uint16_t port = 0;
    auto server = start_demo_server("blocks", {}, port);
    const RunResult client = run_command({"python3", peer_script, "blocks-dribble", std::to_string(port)}, 30s);
    EXPECT_EQ(client.exit_code, 0) << client.err;
    EXPECT_EQ(server->wait_exit(10s), 0) << server->output();
    EXPECT_NE(server->output().find(book_block_lines()), std::string::npos) << server->output();
}

TEST(Blocks, AnAnnouncedFourGibibyteBlockIsRefusedWithoutAllocatingIt) {
    // 256 MiB of address space: a 4 GiB allocation could not even be tried without failing.
    std::uint16_t port = 0;
    auto server = start_demo_server("blocks", {}, port, {"prlimit", "--as=268435456"});
    ASSERT_NE(port, 0) << server->output();
    run_command({"python3", peer_script, "blocks-huge", std::to_string(port)});
    EXPECT_EQ(server->wait_exit(10s), 1) << server->output();
    EXPECT_NE(server->output().find("a block of 4294967295 bytes was announced; the limit is 16777216 bytes (--max-block)"),
              std::string::npos)
        << server->output();
}

TEST(Blocks, ABlockOverMaxBlockIsAnErrorExitOne) {
    std::uint16_t port = 0;
    auto server = start_demo_server("blocks", {"--max-block", "10"}, port);
    run_zen({"blocks", "-c", "-p", std::to_string(port)});
    EXPECT_EQ(server->wait_exit(10s), 1) << server->output();
    EXPECT_NE(server->output().find("a block of 30 bytes was announced; the limit is 10 bytes"), std::string::npos)
        << server->output();
}

TEST(Blocks, EofInTheMiddleOfABlockIsAnErrorExitOne) {
    std::uint16_t port = 0;
    auto server = start_demo_server("blocks", {}, port);
    run_command({"python3", peer_script, "blocks-truncated", std::to_string(port)});
    EXPECT_EQ(server->wait_exit(10s), 1) << server->output();
    EXPECT_NE(server->output().find("the connection closed with 90 bytes left in this block"), std::string::npos)
        << server->output();
}

// Issue 19's decision: --timeout bounds the client's silence at each read, as nc -w and socat -T
// do, so a byte every 0.3 s keeps the exchange going past it; --time-limit bounds the whole
// exchange. A trickle 0.3 s apart for 3 s outlives a 1 s --timeout and ends in its own EOF.
TEST(Blocks, TimeoutIsSilenceAtEachReadNotTheWholeExchange) {
    std::uint16_t port = 0;
    auto server = start_demo_server("blocks", {"--timeout", "1"}, port);
    const auto started = std::chrono::steady_clock::now();
    run_command({"python3", peer_script, "trickle", std::to_string(port), "10"}, 30s);
    EXPECT_EQ(server->wait_exit(10s), 1) << server->output();
    EXPECT_GE(std::chrono::steady_clock::now() - started, 2500ms);
    EXPECT_NE(server->output().find("the connection closed with 990 bytes left in this block"), std::string::npos)
        << server->output();
}

TEST(Blocks, ATrickleIsCutAtTheTimeLimit) {
    std::uint16_t port = 0;
    auto server = start_demo_server("blocks", {"--timeout", "1", "--time-limit", "1.5"}, port);
    const auto started = std::chrono::steady_clock::now();
    auto client = Process::start({"python3", peer_script, "trickle", std::to_string(port), "60"});
    EXPECT_EQ(server->wait_exit(15s), 1) << server->output();
    EXPECT_LT(std::chrono::steady_clock::now() - started, 12s) << "the 18 s trickle was not cut";
    EXPECT_NE(server->output().find("zen blocks: the exchange took longer than --time-limit (1500 ms)"),
              std::string::npos)
        << server->output();
    client->wait_exit(15s);
}

TEST(Streamer, ATrickleIsCutAtTheTimeLimit) {
    std::uint16_t port = 0;
    auto server = start_demo_server("streamer", {"--timeout", "1", "--time-limit", "1.5"}, port);
    auto client = Process::start({"python3", peer_script, "trickle", std::to_string(port), "60"});
    EXPECT_EQ(server->wait_exit(15s), 1) << server->output();
    EXPECT_NE(server->output().find("zen streamer: the exchange took longer than --time-limit (1500 ms)"),
              std::string::npos)
        << server->output();
    client->wait_exit(15s);
}

TEST(Streamer, ASilentClientIsCutAtTheTimeout) {
    std::uint16_t port = 0;
    auto server = start_demo_server("streamer", {"--timeout", "0.5"}, port);
    auto client = Process::start({"python3", "-c",
                                  "import socket, time\n"
                                  "s = socket.create_connection(('127.0.0.1', " + std::to_string(port) + "))\n"
                                  "time.sleep(5)\n"});
    EXPECT_EQ(server->wait_exit(10s), 1) << server->output();
    EXPECT_NE(server->output().find("zen streamer: timed out waiting for the peer (--timeout 500 ms)"),
              std::string::npos)
        << server->output();
    client->wait_exit(10s);
}

TEST(Chapter5, ClientsToAClosedPortExitOne) {
    std::uint16_t port = 0;
    {
        auto server = start_demo_server("blocks", {}, port);  // learn a free port, then free it
    }
    for (const char* name : {"streamer", "blocks"}) {
        const RunResult client = run_zen({name, "-c", "-p", std::to_string(port)});
        EXPECT_EQ(client.exit_code, 1) << name;
        EXPECT_NE(client.err.find("Connection refused"), std::string::npos) << client.err;
    }
}

TEST(Chapter5, ClientWithoutAPortIsAUsageError) {
    const RunResult client = run_zen({"blocks", "-c", "-p", "0"});
    EXPECT_EQ(client.exit_code, 2);
    EXPECT_NE(client.err.find("-c needs the server's port"), std::string::npos) << client.err;
}

}  // namespace
}  // namespace zen::test
