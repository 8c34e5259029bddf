// What is particular to the blocking architectures (issue 3): how many clients each serves at
// once, prefork's worker management, --exit-idle, --delay, and the drain on SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "support/harness.hpp"

namespace zen::test {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view beautiful = "Beautiful is better than?";

bool answered_within(Connection& connection, std::string_view question, std::string_view answer, Millis timeout) {
    connection.send(question);
    return connection.receive_bytes(answer.size(), timeout).data == answer;
}

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

class EveryBlockingArchitecture : public ::testing::TestWithParam<std::string> {};

TEST_P(EveryBlockingArchitecture, ExitIdleExitsZeroByItselfAfterTheLastClient) {
    auto server = Server::start({"--arch", GetParam(), "--exit-idle", "1"});
    {
        Connection client = Connection::open("127.0.0.1", server->port());
        // Connected (and silent) for longer than --exit-idle: an open connection is not idle.
        std::this_thread::sleep_for(1500ms);
        EXPECT_TRUE(server->process().running());
        EXPECT_TRUE(answered_within(client, beautiful, "Ugly.", 5s));
    }
    const auto closed = Clock::now();
    EXPECT_EQ(server->process().wait_exit(10s), 0) << server->log();
    EXPECT_GE(Clock::now() - closed, 900ms);
    EXPECT_NE(server->log().find("No connection for 1 s: exiting (--exit-idle)"), std::string::npos) << server->log();
}

TEST_P(EveryBlockingArchitecture, ExitIdleWithNoClientAtAll) {
    auto server = Server::start({"--arch", GetParam(), "--exit-idle", "0.3"});
    EXPECT_EQ(server->process().wait_exit(10s), 0) << server->log();
}

TEST_P(EveryBlockingArchitecture, SigtermDuringADelayedAnswerStillDeliversIt) {
    auto server = Server::start({"--arch", GetParam(), "--delay", "1"});
    Connection client = Connection::open("127.0.0.1", server->port());
    client.send(beautiful);
    std::this_thread::sleep_for(300ms);  // the answering thread is asleep in --delay
    ::kill(server->process().pid(), SIGTERM);
    const Drained got = client.receive_until_eof(10s);
    EXPECT_EQ(got.data, "Ugly.");
    EXPECT_TRUE(got.eof);
    EXPECT_EQ(server->process().wait_exit(10s), 0) << server->log();
}

TEST_P(EveryBlockingArchitecture, DelayIsPaidPerAnswer) {
    auto server = Server::start({"--arch", GetParam(), "--delay", "0.2"});
    Connection client = Connection::open("127.0.0.1", server->port());
    const auto started = Clock::now();
    client.send("Beautiful is better than?Simple is better than?Explicit is better than?");
    EXPECT_EQ(client.receive_bytes(22, 10s).data, "Ugly.Complex.Implicit.");
    EXPECT_GE(Clock::now() - started, 550ms);
}

TEST_P(EveryBlockingArchitecture, AStuckDrainIsStoppedHardAfterTheDrainTimeout) {
    auto server = Server::start({"--arch", GetParam(), "--delay", "30", "--drain-timeout", "0.5"});
    Connection client = Connection::open("127.0.0.1", server->port());
    client.send(beautiful);
    std::this_thread::sleep_for(200ms);
    const auto stopped = Clock::now();
    const int code = server->process().stop(SIGTERM, 10s);
    EXPECT_EQ(code, 1) << server->log();
    EXPECT_LT(Clock::now() - stopped, 5s);
    EXPECT_NE(server->log().find("stopping hard"), std::string::npos) << server->log();
}

TEST_P(EveryBlockingArchitecture, SigquitLetsOpenConversationsFinish) {
    auto server = Server::start({"--arch", GetParam()});
    Connection client = Connection::open("127.0.0.1", server->port());
    EXPECT_TRUE(answered_within(client, beautiful, "Ugly.", 5s));
    ::kill(server->process().pid(), SIGQUIT);
    std::this_thread::sleep_for(300ms);
    EXPECT_TRUE(server->process().running());
    EXPECT_TRUE(answered_within(client, "Simple is better than?", "Complex.", 5s));
    client.close();
    EXPECT_EQ(server->process().wait_exit(10s), 0) << server->log();
}

INSTANTIATE_TEST_SUITE_P(Blocking, EveryBlockingArchitecture,
                         ::testing::Values("single", "threaded", "per-client", "prefork"),
                         [](const ::testing::TestParamInfo<std::string>& info) {
                             std::string name = info.param;
                             std::replace(name.begin(), name.end(), '-', '_');
                             return name;
                         });

}  // namespace
}  // namespace zen::test
