// How a server of every architecture ends and waits: --exit-idle, SIGQUIT, the drain and hard
// stop on SIGTERM, and the simulated work of --delay and --wait.
#include <gtest/gtest.h>
#include <signal.h>

#include <thread>

#include "conformance/architectures.hpp"
#include "support/harness.hpp"

namespace zen::test {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view beautiful = "Beautiful is better than?";

class EveryArchitecture : public ::testing::TestWithParam<ServerVariant> {
protected:
    std::unique_ptr<Server> start(std::vector<std::string> extra) {
        std::vector<std::string> args = GetParam().args;
        args.insert(args.end(), extra.begin(), extra.end());
        return Server::start(args);
    }
};

TEST_P(EveryArchitecture, ExitIdleExitsZeroByItselfAfterTheLastClient) {
    auto server = start({"--exit-idle", "1"});
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

TEST_P(EveryArchitecture, ExitIdleWithNoClientAtAll) {
    auto server = start({"--exit-idle", "0.3"});
    EXPECT_EQ(server->process().wait_exit(10s), 0) << server->log();
}

TEST_P(EveryArchitecture, SigtermDuringADelayedAnswerStillDeliversIt) {
    auto server = start({"--delay", "1"});
    Connection client = Connection::open("127.0.0.1", server->port());
    client.send(beautiful);
    std::this_thread::sleep_for(300ms);  // the answering thread is asleep in --delay
    ::kill(server->process().pid(), SIGTERM);
    const Drained got = client.receive_until_eof(10s);
    EXPECT_EQ(got.data, "Ugly.");
    EXPECT_TRUE(got.eof);
    EXPECT_EQ(server->process().wait_exit(10s), 0) << server->log();
}

TEST_P(EveryArchitecture, SigtermDeliversAnswersHeldByWait) {
    auto server = start({"--wait", "0.5", "--drain-timeout", "5"});
    Connection client = Connection::open("127.0.0.1", server->port());
    client.send("Simple is better than?Beautiful is better than?");
    // Accepted first: a SIGTERM before the accept would leave the connection in the backlog, to
    // be reset with the listener (which an architecture slow to start used to show as a flake).
    ASSERT_TRUE(server->wait_for_log("Accepted connection")) << server->log();
    std::this_thread::sleep_for(100ms);  // both questions are in; their answers are held
    const auto stopped = Clock::now();
    ::kill(server->process().pid(), SIGTERM);
    const Drained got = client.receive_until_eof(10s);
    EXPECT_EQ(got.data, "Complex.Ugly.");
    EXPECT_TRUE(got.eof);
    EXPECT_LT(Clock::now() - stopped, 3s) << "the answers waited for the drain deadline";
    EXPECT_EQ(server->process().wait_exit(10s), 0) << server->log();
    EXPECT_EQ(server->log().find("not reading its answers"), std::string::npos) << server->log();
}

TEST_P(EveryArchitecture, SigtermDoesNotWaitTheDrainOutForAClientThatKeepsItsSocketOpen) {
    // Issue 19's decision: answered and sent EOF, a client that keeps its socket open is let go
    // after the linger (about a second), in every architecture, not at --drain-timeout.
    auto server = start({"--drain-timeout", "10"});
    Connection client = Connection::open("127.0.0.1", server->port());
    EXPECT_TRUE(answered_within(client, beautiful, "Ugly.", 5s));
    const auto stopped = Clock::now();
    ::kill(server->process().pid(), SIGTERM);
    EXPECT_EQ(server->process().wait_exit(10s), 0) << server->log();
    EXPECT_LT(Clock::now() - stopped, 3s) << server->log();
    EXPECT_TRUE(client.receive_until_eof(5s).eof);
}

TEST_P(EveryArchitecture, DelayIsPaidPerAnswer) {
    auto server = start({"--delay", "0.2"});
    Connection client = Connection::open("127.0.0.1", server->port());
    const auto started = Clock::now();
    client.send("Beautiful is better than?Simple is better than?Explicit is better than?");
    EXPECT_EQ(client.receive_bytes(22, 10s).data, "Ugly.Complex.Implicit.");
    EXPECT_GE(Clock::now() - started, 550ms);
}

TEST_P(EveryArchitecture, AStuckDrainIsStoppedHardAfterTheDrainTimeout) {
    auto server = start({"--delay", "30", "--drain-timeout", "0.5"});
    Connection client = Connection::open("127.0.0.1", server->port());
    client.send(beautiful);
    std::this_thread::sleep_for(200ms);
    const auto stopped = Clock::now();
    const int code = server->process().stop(SIGTERM, 10s);
    EXPECT_EQ(code, 1) << server->log();
    EXPECT_LT(Clock::now() - stopped, 5s);
    EXPECT_NE(server->log().find("stopping hard"), std::string::npos) << server->log();
}

TEST_P(EveryArchitecture, SigquitLetsOpenConversationsFinish) {
    auto server = start({});
    Connection client = Connection::open("127.0.0.1", server->port());
    EXPECT_TRUE(answered_within(client, beautiful, "Ugly.", 5s));
    ::kill(server->process().pid(), SIGQUIT);
    std::this_thread::sleep_for(300ms);
    EXPECT_TRUE(server->process().running());
    EXPECT_TRUE(answered_within(client, "Simple is better than?", "Complex.", 5s));
    client.close();
    EXPECT_EQ(server->process().wait_exit(10s), 0) << server->log();
}

INSTANTIATE_TEST_SUITE_P(Lifecycle, EveryArchitecture, ::testing::ValuesIn(conformance_variants),
                         [](const ::testing::TestParamInfo<ServerVariant>& info) { return info.param.name; });

}  // namespace
}  // namespace zen::test
