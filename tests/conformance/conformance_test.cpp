// The Zen protocol (DESIGN §2) over real sockets, against every architecture in architectures.hpp.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

#include "conformance/architectures.hpp"
#include "support/harness.hpp"

namespace zen::test {
namespace {

constexpr std::string_view beautiful = "Beautiful is better than?";
constexpr std::string_view explicit_q = "Explicit is better than?";
constexpr std::string_view simple = "Simple is better than?";

class Conformance : public ::testing::TestWithParam<ServerVariant> {
protected:
    std::unique_ptr<Server> start(std::vector<std::string> extra = {}, const std::string& host = "127.0.0.1") {
        std::vector<std::string> args = GetParam().args;
        args.insert(args.end(), extra.begin(), extra.end());
        return Server::start(args, host);
    }

    // Asks one question and expects exactly this answer.
    static void expect_answer(Connection& connection, std::string_view question, std::string_view answer) {
        connection.send(question);
        const Drained got = connection.receive_bytes(answer.size());
        EXPECT_EQ(got.data, answer) << "question " << question;
    }
};

TEST_P(Conformance, AnswersTheBooksThreeQuestionsOneAtATime) {
    auto server = start();
    Connection client = Connection::open("127.0.0.1", server->port());
    expect_answer(client, simple, "Complex.");
    expect_answer(client, beautiful, "Ugly.");
    expect_answer(client, explicit_q, "Implicit.");
    client.close();
    EXPECT_TRUE(server->wait_for_log("has closed"));
}

TEST_P(Conformance, UnknownQuestionGetsTheErrorAnswerAndTheConversationGoesOn) {
    auto server = start();
    Connection client = Connection::open("127.0.0.1", server->port());
    expect_answer(client, "Is this the right room for an argument?", "Error: unknown aphorism.");
    expect_answer(client, "beautiful is better than?", "Error: unknown aphorism.");  // exact match only
    expect_answer(client, beautiful, "Ugly.");
}

TEST_P(Conformance, TwoQuestionsInOneWriteGetTwoAnswers) {
    auto server = start();
    Connection client = Connection::open("127.0.0.1", server->port());
    client.send("Beautiful is better than?Simple is better than?");
    EXPECT_EQ(client.receive_bytes(13).data, "Ugly.Complex.");
}

TEST_P(Conformance, QuestionSentOneByteAtATimeIsAnswered) {
    auto server = start();
    Connection client = Connection::open("127.0.0.1", server->port());
    for (const char c : beautiful) {
        client.send(std::string_view(&c, 1));
        std::this_thread::sleep_for(2ms);  // separate segments, so the server sees separate reads
    }
    EXPECT_EQ(client.receive_bytes(5).data, "Ugly.");
}

TEST_P(Conformance, LeadingWhitespaceIsSkippedSoLinesTypedIntoNcWork) {
    auto server = start();
    Connection client = Connection::open("127.0.0.1", server->port());
    client.send("Beautiful is better than?\r\n");
    EXPECT_EQ(client.receive_bytes(5).data, "Ugly.");
    client.send("  \tSimple is better than?\n\n Explicit is better than?\n");
    EXPECT_EQ(client.receive_bytes(17).data, "Complex.Implicit.");
}

TEST_P(Conformance, NothingIsSentButTheAnswers) {
    auto server = start();
    Connection client = Connection::open("127.0.0.1", server->port());
    client.send(beautiful);
    client.shutdown_write();
    const Drained got = client.receive_until_eof();
    EXPECT_TRUE(got.eof);
    EXPECT_EQ(got.data, "Ugly.");
}

TEST_P(Conformance, HalfCloseStillGetsEveryAnswerThenEof) {
    auto server = start();
    Connection client = Connection::open("127.0.0.1", server->port());
    client.send("Beautiful is better than?Explicit is better than?Simple is better than?Nope?");
    client.shutdown_write();
    const Drained got = client.receive_until_eof();
    EXPECT_TRUE(got.eof) << "reset=" << got.reset << " timed_out=" << got.timed_out;
    EXPECT_EQ(got.data, "Ugly.Implicit.Complex.Error: unknown aphorism.");
    EXPECT_TRUE(server->wait_for_log("has closed"));
}

TEST_P(Conformance, TenThousandPipelinedQuestionsComeBackInOrder) {
    auto server = start();
    Connection client = Connection::open("127.0.0.1", server->port());
    std::string questions;
    std::string answers;
    const std::string_view cycle_q[] = {beautiful, explicit_q, simple, "Unknown?"};
    const std::string_view cycle_a[] = {"Ugly.", "Implicit.", "Complex.", "Error: unknown aphorism."};
    for (int i = 0; i < 10'000; ++i) {
        questions.append(cycle_q[i % 4]);
        answers.append(cycle_a[i % 4]);
    }
    // Write from another thread: the server applies backpressure, so a client that only
    // writes would deadlock against it once both socket buffers are full.
    std::thread writer([&] { client.send(questions); client.shutdown_write(); });
    const Drained got = client.receive_until_eof(30s);
    writer.join();
    EXPECT_TRUE(got.eof);
    ASSERT_EQ(got.data.size(), answers.size());
    EXPECT_TRUE(got.data == answers) << "answers differ or are out of order";
}

TEST_P(Conformance, QuestionTooLongGetsTheErrorAndAGracefulClose) {
    auto server = start();
    Connection client = Connection::open("127.0.0.1", server->port());
    client.send(std::string(5000, 'x'));
    // Keep talking after the limit: the server must still deliver its answer, not a reset.
    client.send(std::string(20000, 'y'));
    const Drained got = client.receive_until_eof();
    EXPECT_EQ(got.data, "Error: question too long.");
    EXPECT_TRUE(got.eof) << "reset=" << got.reset << " timed_out=" << got.timed_out;
    EXPECT_TRUE(server->wait_for_log("error: question too long"));
}

TEST_P(Conformance, AnswersBeforeATooLongQuestionAreSentFirst) {
    auto server = start();
    Connection client = Connection::open("127.0.0.1", server->port());
    client.send(std::string(beautiful) + std::string(5000, 'x') + "?");
    const Drained got = client.receive_until_eof();
    EXPECT_EQ(got.data, "Ugly.Error: question too long.");
    EXPECT_TRUE(got.eof);
}

TEST_P(Conformance, MaxQuestionIsInclusive) {
    auto server = start({"--max-question", "32"});
    Connection client = Connection::open("127.0.0.1", server->port());
    expect_answer(client, std::string(31, 'a') + "?", "Error: unknown aphorism.");
    client.send(std::string(32, 'b') + "?");
    const Drained got = client.receive_until_eof();
    EXPECT_EQ(got.data, "Error: question too long.");
    EXPECT_TRUE(got.eof);
}

TEST_P(Conformance, BinaryJunkAndNulBytesGetADefinedAnswer) {
    auto server = start();
    Connection client = Connection::open("127.0.0.1", server->port());
    std::string junk;
    for (int i = 0; i < 256; ++i) {
        if (i != '?') junk.push_back(static_cast<char>(i));
    }
    junk += "?";
    expect_answer(client, junk, "Error: unknown aphorism.");
    expect_answer(client, std::string("\0\0?", 3), "Error: unknown aphorism.");
    expect_answer(client, "\xc3\x28\xff?", "Error: unknown aphorism.");  // invalid UTF-8
    expect_answer(client, beautiful, "Ugly.");
}

TEST_P(Conformance, HttpRequestGetsUnknownAphorismAndNoCrash) {
    auto server = start();
    Connection client = Connection::open("127.0.0.1", server->port());
    client.send("GET /?q=1 HTTP/1.1\r\nHost: x\r\n\r\n");
    client.shutdown_write();
    const Drained got = client.receive_until_eof();
    EXPECT_EQ(got.data, "Error: unknown aphorism.");
    EXPECT_TRUE(got.eof);
    EXPECT_TRUE(server->wait_for_log("but then closed"));
    Connection next = Connection::open("127.0.0.1", server->port());
    expect_answer(next, simple, "Complex.");
}

TEST_P(Conformance, LogsTheBooksLinesForANormalConversation) {
    auto server = start();
    Connection client = Connection::open("127.0.0.1", server->port());
    const std::string peer = "('127.0.0.1', " + std::to_string(client.local_port()) + ")";
    expect_answer(client, beautiful, "Ugly.");
    client.close();
    ASSERT_TRUE(server->wait_for_log("Client socket to " + peer + " has closed"));
    EXPECT_NE(server->log().find("Accepted connection from " + peer), std::string::npos) << server->log();
}

TEST_P(Conformance, PartialQuestionAtEofIsLoggedAndServiceGoesOn) {
    auto server = start();
    Connection client = Connection::open("127.0.0.1", server->port());
    const std::string peer = "('127.0.0.1', " + std::to_string(client.local_port()) + ")";
    client.send("Beautiful is better than");
    client.close();
    EXPECT_TRUE(server->wait_for_log("Client " + peer + " sent b'Beautiful is better than' but then closed"))
        << server->log();
    Connection next = Connection::open("127.0.0.1", server->port());
    expect_answer(next, explicit_q, "Implicit.");
}

TEST_P(Conformance, ResetMidQuestionIsLoggedAndServiceGoesOn) {
    auto server = start();
    {
        Connection client = Connection::open("127.0.0.1", server->port());
        client.send("Simple is bet");
        std::this_thread::sleep_for(50ms);
        client.reset();
    }
    Connection next = Connection::open("127.0.0.1", server->port());
    expect_answer(next, simple, "Complex.");
    EXPECT_TRUE(server->process().running());
}

TEST_P(Conformance, ClientThatClosesBeforeReadingDoesNotKillTheServer) {
    auto server = start();
    for (int i = 0; i < 20; ++i) {
        Connection client = Connection::open("127.0.0.1", server->port());
        client.send(repeat(beautiful, 2000));
        client.reset();
    }
    Connection next = Connection::open("127.0.0.1", server->port());
    expect_answer(next, beautiful, "Ugly.");
    EXPECT_TRUE(server->process().running());
}

TEST_P(Conformance, ServesIpv6Loopback) {
    auto server = start({}, "::1");
    EXPECT_NE(server->log().find("Listening at ('::1', "), std::string::npos) << server->log();
    Connection client = Connection::open("::1", server->port());
    const std::string peer = "('::1', " + std::to_string(client.local_port()) + ", 0, 0)";
    expect_answer(client, beautiful, "Ugly.");
    EXPECT_TRUE(server->wait_for_log("Accepted connection from " + peer)) << server->log();
}

TEST_P(Conformance, EmptyHostListensOnEveryInterfaceForIpv4AndIpv6) {
    auto server = start({}, "");
    EXPECT_NE(server->log().find("Listening at ('', "), std::string::npos) << server->log();
    Connection v4 = Connection::open("127.0.0.1", server->port());
    expect_answer(v4, simple, "Complex.");
    const std::string peer = "('127.0.0.1', " + std::to_string(v4.local_port()) + ")";
    EXPECT_TRUE(server->wait_for_log("Accepted connection from " + peer)) << server->log();
    v4.close();
    Connection v6 = Connection::open("::1", server->port());
    expect_answer(v6, explicit_q, "Implicit.");
}

TEST_P(Conformance, AphorismsFileReplacesTheTable) {
    const std::string path = ::testing::TempDir() + "zen-conformance-aphorisms-" + std::to_string(::getpid()) + ".txt";
    {
        std::ofstream file(path);
        file << "# a table of our own\nErrors should never pass? Silently.\nNow is better than? Never.\n";
    }
    auto server = start({"--aphorisms", path});
    Connection client = Connection::open("127.0.0.1", server->port());
    expect_answer(client, "Errors should never pass?", "Silently.");
    expect_answer(client, "Now is better than?", "Never.");
    expect_answer(client, beautiful, "Error: unknown aphorism.");
    std::remove(path.c_str());
}

TEST_P(Conformance, UnfinishedQuestionIsClosedAtTheQuestionTimeout) {
    auto server = start({"--question-timeout", "0.5", "--idle-timeout", "60"});
    Connection client = Connection::open("127.0.0.1", server->port());
    client.send("Beautiful is");
    const auto started = std::chrono::steady_clock::now();
    // Dribble bytes: activity must not reset the question's deadline.
    for (int i = 0; i < 5; ++i) {
        std::this_thread::sleep_for(100ms);
        client.send(" ");
    }
    const Drained got = client.receive_until_eof(10s);
    EXPECT_TRUE(got.eof || got.reset);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
    EXPECT_TRUE(server->wait_for_log("question not finished within 500 ms")) << server->log();
}

TEST_P(Conformance, SilentConnectionIsClosedAtTheIdleTimeout) {
    auto server = start({"--idle-timeout", "0.5"});
    Connection client = Connection::open("127.0.0.1", server->port());
    expect_answer(client, beautiful, "Ugly.");
    const Drained got = client.receive_until_eof(10s);
    EXPECT_TRUE(got.eof);
    EXPECT_TRUE(server->wait_for_log("idle for 500 ms")) << server->log();
}

TEST_P(Conformance, SpacesAloneAreSilenceForTheIdleTimeout) {
    // Issue 19's decision: whitespace that starts no question does not keep a connection alive.
    auto server = start({"--idle-timeout", "0.5", "--question-timeout", "0.5"});
    Connection client = Connection::open("127.0.0.1", server->port());
    expect_answer(client, beautiful, "Ugly.");
    const auto started = std::chrono::steady_clock::now();
    bool closed = false;
    for (int i = 0; i < 20 && !closed; ++i) {  // a space every 0.2 s, for at most 4 s
        std::this_thread::sleep_for(200ms);
        try {
            client.send(" ");
        } catch (const std::exception&) {
            closed = true;  // the server has closed: the send hit its reset
        }
        closed = closed || server->log().find("idle for 500 ms") != std::string::npos;
    }
    EXPECT_TRUE(server->wait_for_log("idle for 500 ms")) << server->log();
    EXPECT_LT(std::chrono::steady_clock::now() - started, 3s);
}

TEST_P(Conformance, ClientThatNeverReadsLeavesServerMemoryBounded) {
    auto server = start({"--max-pending", "65536"});
    Connection client = Connection::open("127.0.0.1", server->port());
    const long rss_before = server->process().rss_kib();
    // Write questions without reading until the server stops taking them for a while.
    const std::string chunk = repeat(beautiful, 400);  // 10,000 bytes
    const int fd = client.fd();
    std::size_t sent = 0;
    auto last_progress = std::chrono::steady_clock::now();
    while (sent < 64 * 1024 * 1024 && std::chrono::steady_clock::now() - last_progress < 500ms) {
        const std::size_t offset = sent % chunk.size();  // the stream stays whole questions back to back
        const ssize_t n = ::send(fd, chunk.data() + offset, chunk.size() - offset, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<std::size_t>(n);
            last_progress = std::chrono::steady_clock::now();
        } else {
            std::this_thread::sleep_for(5ms);
        }
    }
    const long rss_blocked = server->process().rss_kib();
    EXPECT_LT(rss_blocked - rss_before, 16 * 1024) << "server grew by " << (rss_blocked - rss_before) << " KiB";
    // Nothing was lost: every whole question sent is answered, in order, once we read.
    client.shutdown_write();
    const std::size_t questions = sent / beautiful.size();
    const Drained got = client.receive_until_eof(60s);
    EXPECT_TRUE(got.eof);
    EXPECT_EQ(got.data.size(), questions * 5);
    EXPECT_TRUE(got.data == repeat("Ugly.", questions)) << "answers are not all 'Ugly.'";
}

TEST_P(Conformance, SigtermStopsTheServerWithExitZero) {
    auto server = start();
    Connection client = Connection::open("127.0.0.1", server->port());
    expect_answer(client, beautiful, "Ugly.");
    EXPECT_EQ(server->process().stop(SIGTERM), 0) << server->log();
    EXPECT_NE(server->log().find("Stopped on SIGTERM"), std::string::npos) << server->log();
    // Its connection ends with an orderly close, not a hang.
    const Drained got = client.receive_until_eof(10s);
    EXPECT_TRUE(got.eof);
}

TEST_P(Conformance, SigintStopsAnIdleServerWithExitZero) {
    auto server = start();
    EXPECT_EQ(server->process().stop(SIGINT), 0) << server->log();
    EXPECT_NE(server->log().find("Stopped on SIGINT"), std::string::npos) << server->log();
}

TEST_P(Conformance, QuietDropsPerConnectionLines) {
    auto server = start({"--quiet"});
    Connection client = Connection::open("127.0.0.1", server->port());
    expect_answer(client, beautiful, "Ugly.");
    client.close();
    Connection second = Connection::open("127.0.0.1", server->port());
    expect_answer(second, simple, "Complex.");  // the first conversation is over by now
    EXPECT_EQ(server->log().find("Accepted connection"), std::string::npos) << server->log();
    EXPECT_EQ(server->log().find("has closed"), std::string::npos) << server->log();
}

TEST_P(Conformance, JsonLogFormatWritesOneObjectPerLine) {
    auto server = start({"--log-format", "json"});
    Connection client = Connection::open("127.0.0.1", server->port());
    const std::string port = std::to_string(client.local_port());
    const std::string peer = "('127.0.0.1', " + port + ")";
    expect_answer(client, beautiful, "Ugly.");
    client.close();
    ASSERT_TRUE(server->wait_for_log("\"event\":\"closed\""));
    std::istringstream lines(server->log());
    std::string line;
    int count = 0;
    const std::regex object(R"(^\{"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z","level":"\w+","event":"\w+",.*"message":".*"\}$)");
    while (std::getline(lines, line)) {
        ++count;
        EXPECT_TRUE(std::regex_match(line, object)) << line;
    }
    EXPECT_GE(count, 3);
    // The book's tuple, then the address and the port apart (issue 14 item 6).
    EXPECT_NE(server->log().find(R"("event":"accepted","peer":")" + peer + R"(","peer_address":"127.0.0.1","peer_port":)" + port +
                                 R"(,"message":"Accepted connection from )" + peer),
              std::string::npos)
        << server->log();
}

INSTANTIATE_TEST_SUITE_P(Architectures, Conformance, ::testing::ValuesIn(conformance_variants),
                         [](const ::testing::TestParamInfo<ServerVariant>& info) {
                             std::string name = info.param.name;
                             for (char& c : name) {
                                 if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                             }
                             return name;
                         });

}  // namespace
}  // namespace zen::test
