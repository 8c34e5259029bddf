// What is particular to the blocking architectures: how many clients each serves at once, and
// prefork's worker management. (--exit-idle, --delay and the drain: tests/lifecycle/.)
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "support/harness.hpp"

namespace zen::test {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view beautiful = "Beautiful is better than?";

TEST(Threaded, ServesFourClientsAtOnceAndTheFifthOnlyWhenOneLeaves) {
    auto server = Server::start({"--arch", "threaded", "--workers", "4"});
    std::vector<Connection> four;
    for (int i = 0; i < 4; ++i) {
        four.push_back(Connection::open("127.0.0.1", server->port()));
        EXPECT_TRUE(answered_within(four.back(), beautiful, "Ugly.", 5s)) << "client " << i + 1;
    }
    Connection fifth = Connection::open("127.0.0.1", server->port());  // completed by the kernel's backlog
    fifth.send(beautiful);
    EXPECT_TRUE(fifth.receive_bytes(5, 700ms).data.empty()) << "a fifth client was served by four threads";
    four.front().close();
    EXPECT_EQ(fifth.receive_bytes(5, 5s).data, "Ugly.");
}

TEST(Single, ServesOneClientAtATime) {
    auto server = Server::start({"--arch", "single"});
    Connection first = Connection::open("127.0.0.1", server->port());
    EXPECT_TRUE(answered_within(first, beautiful, "Ugly.", 5s));
    Connection second = Connection::open("127.0.0.1", server->port());
    second.send(beautiful);
    EXPECT_TRUE(second.receive_bytes(5, 500ms).data.empty());
    first.close();
    EXPECT_EQ(second.receive_bytes(5, 5s).data, "Ugly.");
}

TEST(PerClient, ServesTwoHundredConcurrentClients) {
    auto server = Server::start({"--arch", "per-client", "--quiet"});
    std::vector<Connection> clients;
    for (int i = 0; i < 200; ++i) clients.push_back(Connection::open("127.0.0.1", server->port()));
    // Every one is in a conversation at once: all ask before any answer is read.
    for (Connection& client : clients) client.send("Simple is better than?Explicit is better than?");
    int correct = 0;
    for (Connection& client : clients) {
        if (client.receive_bytes(17, 10s).data == "Complex.Implicit.") ++correct;
    }
    EXPECT_EQ(correct, 200);
    for (Connection& client : clients) client.shutdown_write();
    int clean_eofs = 0;
    for (Connection& client : clients) {
        const Drained rest = client.receive_until_eof(10s);
        if (rest.eof && rest.data.empty()) ++clean_eofs;
    }
    EXPECT_EQ(clean_eofs, 200);
    EXPECT_TRUE(server->process().running());
}

std::vector<pid_t> wait_for_workers(Process& server, std::size_t count, Millis timeout = 5s) {
    const auto deadline = Clock::now() + timeout;
    std::vector<pid_t> workers = server.children();
    while (workers.size() != count && Clock::now() < deadline) {
        std::this_thread::sleep_for(10ms);
        workers = server.children();
    }
    return workers;
}

TEST(Prefork, StartsItsWorkersAndServesFromAllOfThem) {
    auto server = Server::start({"--arch", "prefork", "--workers", "3"});
    EXPECT_EQ(wait_for_workers(server->process(), 3).size(), 3u);
    // Three clients held open at once: each must be served by a different worker.
    std::vector<Connection> clients;
    for (int i = 0; i < 3; ++i) {
        clients.push_back(Connection::open("127.0.0.1", server->port()));
        EXPECT_TRUE(answered_within(clients.back(), beautiful, "Ugly.", 5s)) << "client " << i + 1;
    }
    EXPECT_NE(server->log().find("Started worker 3 (pid "), std::string::npos) << server->log();
}

TEST(Prefork, AKilledWorkerIsReplacedAndServiceGoesOn) {
    auto server = Server::start({"--arch", "prefork", "--workers", "2"});
    const auto workers = wait_for_workers(server->process(), 2);
    ASSERT_EQ(workers.size(), 2u);
    ::kill(workers[0], SIGKILL);
    ASSERT_TRUE(server->wait_for_log("was killed by signal 9; starting a new one", 3s)) << server->log();
    const auto replaced = wait_for_workers(server->process(), 2, 2s);
    ASSERT_EQ(replaced.size(), 2u);
    EXPECT_EQ(std::count(replaced.begin(), replaced.end(), workers[0]), 0);
    for (int i = 0; i < 4; ++i) {
        Connection client = Connection::open("127.0.0.1", server->port());
        EXPECT_TRUE(answered_within(client, beautiful, "Ugly.", 5s));
    }
}

TEST(Prefork, AWorkerThatKeepsDyingIsThrottled) {
    auto server = Server::start({"--arch", "prefork", "--workers", "1"});
    for (int round = 0; round < 4; ++round) {
        const auto workers = wait_for_workers(server->process(), 1, 15s);
        ASSERT_EQ(workers.size(), 1u) << server->log();
        ::kill(workers[0], SIGKILL);
        std::this_thread::sleep_for(50ms);
    }
    EXPECT_TRUE(server->wait_for_log("throttled: next start in", 5s)) << server->log();
    // It still comes back.
    EXPECT_EQ(wait_for_workers(server->process(), 1, 15s).size(), 1u);
    Connection client = Connection::open("127.0.0.1", server->port());
    EXPECT_TRUE(answered_within(client, beautiful, "Ugly.", 5s));
}

TEST(Prefork, SigtermStopsEveryWorker) {
    auto server = Server::start({"--arch", "prefork", "--workers", "3"});
    const auto workers = wait_for_workers(server->process(), 3);
    ASSERT_EQ(workers.size(), 3u);
    EXPECT_EQ(server->process().stop(SIGTERM), 0) << server->log();
    for (const pid_t worker : workers) EXPECT_NE(::kill(worker, 0), 0) << "worker " << worker << " outlived its parent";
}

}  // namespace
}  // namespace zen::test
