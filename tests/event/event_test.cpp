// What is particular to the event-driven architectures: many clients on one thread, fairness,
// memory under a client that never reads, and timers (--wait) versus blocking (--delay).
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <thread>

#include "conformance/architectures.hpp"
#include "support/harness.hpp"

namespace zen::test {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view beautiful = "Beautiful is better than?";

using EventVariant = ServerVariant;

class EventArchitecture : public ::testing::TestWithParam<EventVariant> {
protected:
    static void SetUpTestSuite() {
        // A thousand client sockets in this process.
        rlimit files{};
        ::getrlimit(RLIMIT_NOFILE, &files);
        files.rlim_cur = files.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &files);
    }
    std::unique_ptr<Server> start(std::vector<std::string> extra) {
        std::vector<std::string> args = GetParam().args;
        args.insert(args.end(), extra.begin(), extra.end());
        return Server::start(args);
    }
};

TEST_P(EventArchitecture, AThousandConcurrentClientsWithFourQuestionsInFlightEach) {
    auto server = start({"--quiet"});
    std::vector<Connection> clients;
    for (int i = 0; i < 1000; ++i) clients.push_back(Connection::open("127.0.0.1", server->port()));
    const std::string questions =
        "Beautiful is better than?Explicit is better than?Simple is better than?Unknown?";
    const std::string answers = "Ugly.Implicit.Complex.Error: unknown aphorism.";
    for (Connection& client : clients) client.send(questions);
    int correct = 0;
    for (Connection& client : clients) {
        if (client.receive_bytes(answers.size(), 20s).data == answers) ++correct;
    }
    EXPECT_EQ(correct, 1000);
    EXPECT_TRUE(server->process().running());
}

TEST_P(EventArchitecture, AClientThatNeverReadsCostsBoundedMemoryAndOthersAreStillAnswered) {
    auto server = start({"--quiet"});
    Connection flooder = Connection::open("127.0.0.1", server->port());
    const long rss_before = server->process().rss_kib();
    const std::string chunk = [] {
        std::string text;
        for (int i = 0; i < 2000; ++i) text.append(beautiful);
        return text;
    }();
    std::size_t sent = 0;
    auto last_progress = Clock::now();
    const auto started = Clock::now();
    while (Clock::now() - last_progress < 500ms && Clock::now() - started < 20s) {
        const std::size_t offset = sent % chunk.size();
        const ssize_t n = ::send(flooder.fd(), chunk.data() + offset, chunk.size() - offset, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<std::size_t>(n);
            last_progress = Clock::now();
        } else {
            std::this_thread::sleep_for(5ms);
        }
        if (sent > 256u * 1024 * 1024) break;
    }
    const long grown = server->process().rss_kib() - rss_before;
    EXPECT_LT(grown, 32 * 1024) << "server grew by " << grown << " KiB while a client sent " << sent << " bytes";
    Connection other = Connection::open("127.0.0.1", server->port());
    other.send("Simple is better than?");
    EXPECT_EQ(other.receive_bytes(8, 5s).data, "Complex.");
}

TEST_P(EventArchitecture, WaitUsesATimerSoTwentyClientsOverlap) {
    auto server = start({"--wait", "0.5", "--quiet"});
    std::vector<Connection> clients;
    for (int i = 0; i < 20; ++i) clients.push_back(Connection::open("127.0.0.1", server->port()));
    const auto started = Clock::now();
    for (Connection& client : clients) client.send(beautiful);
    int correct = 0;
    for (Connection& client : clients) {
        if (client.receive_bytes(5, 10s).data == "Ugly.") ++correct;
    }
    const auto took = Clock::now() - started;
    EXPECT_EQ(correct, 20);
    EXPECT_GE(took, 450ms);
    EXPECT_LT(took, 1500ms) << "the waits did not overlap";
}

TEST_P(EventArchitecture, WaitHoldsEachAnswerForItsTime) {
    auto server = start({"--wait", "0.3"});
    Connection client = Connection::open("127.0.0.1", server->port());
    const auto started = Clock::now();
    client.send("Beautiful is better than?Simple is better than?");
    EXPECT_EQ(client.receive_bytes(13, 10s).data, "Ugly.Complex.");
    EXPECT_GE(Clock::now() - started, 550ms);  // one after the other, as a backend call per question
}

TEST_P(EventArchitecture, DelayStallsTheLoopForEveryClient) {
    // --delay blocks the thread; on one event loop that is every client (the chapter's lesson).
    auto server = start({"--delay", "0.4", "--workers", "1"});
    Connection first = Connection::open("127.0.0.1", server->port());
    Connection second = Connection::open("127.0.0.1", server->port());
    const auto started = Clock::now();
    first.send(beautiful);
    std::this_thread::sleep_for(50ms);
    second.send("Simple is better than?");
    EXPECT_EQ(second.receive_bytes(8, 10s).data, "Complex.");
    EXPECT_GE(Clock::now() - started, 750ms) << "the second client was not held up by the first's delay";
    EXPECT_EQ(first.receive_bytes(5, 10s).data, "Ugly.");
}

INSTANTIATE_TEST_SUITE_P(Event, EventArchitecture, ::testing::ValuesIn(event_variants),
                         [](const ::testing::TestParamInfo<EventVariant>& info) { return info.param.name; });

}  // namespace
}  // namespace zen::test
