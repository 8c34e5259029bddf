// The connection's rules, one test each, driven with bytes and a fake clock: no socket, no
// thread, no waiting. The log is a real one, written to a file the test reads back.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "conn/connection.hpp"
#include "conn/connection_tracker.hpp"

namespace zen {
namespace {

using namespace std::chrono_literals;
using Fate = Connection::Fate;

constexpr std::string_view beautiful = "Beautiful is better than?";
constexpr std::string_view simple = "Simple is better than?";
const std::string client_name = "('127.0.0.1', 41285)";

SocketAddress address_of(std::string_view host, std::uint16_t port) {
    auto addresses = resolve(host, port, false);
    if (!addresses || addresses->empty()) throw std::runtime_error("cannot resolve a literal address");
    return addresses->front();
}

// One server's worth of context around a fake clock. Rules may be changed before open().
class ConnectionTest : public ::testing::Test {
protected:
    ConnectionTest() {
        rules.idle_timeout = 10s;
        rules.question_timeout = 3s;
        rules.send_timeout = 5s;
    }
    ~ConnectionTest() override { std::remove(log_path_.c_str()); }

    std::unique_ptr<Connection> open(std::string_view host = "127.0.0.1", std::uint16_t port = 41285) {
        return std::make_unique<Connection>(context_, address_of(host, port), now);
    }

    // Takes and "sends" all the output, as a driver whose sends always succeed would.
    static std::string take(Connection& connection, TimePoint at) {
        std::string out(connection.output());
        connection.sent(out.size(), at);
        return out;
    }
    std::string take(Connection& connection) { return take(connection, now); }

    std::string log_text() const {
        std::ifstream in(log_path_);
        std::stringstream text;
        text << in.rdbuf();
        return text.str();
    }
    bool logged(std::string_view line) const { return log_text().find(line) != std::string::npos; }
    std::uint64_t counted(Counter counter) const { return tracker.value(counter); }

    static std::string temporary_log() {
        char path[] = "/tmp/zen-connection-log-XXXXXX";
        const int fd = ::mkstemp(path);
        if (fd >= 0) ::close(fd);
        return path;
    }

    ConnectionRules rules;
    LiveTable table{AphorismTable::book_defaults()};
    ConnectionTracker tracker;
    TimePoint now = TimePoint{} + 1h;

private:
    std::string log_path_ = temporary_log();
    std::unique_ptr<Log> log_ = std::make_unique<Log>(LogOptions{.file = log_path_});

protected:
    ConnectionContext context_{rules, table, *log_, tracker};
};

// --- the conversation -----------------------------------------------------------------------

TEST_F(ConnectionTest, AnswersInOrderAndCountsEveryAnswer) {
    auto connection = open();
    EXPECT_TRUE(logged("Accepted connection from " + client_name));
    EXPECT_EQ(tracker.active(), 1);
    EXPECT_TRUE(connection->wants_read());
    connection->received("Beautiful is better than?Simple is", now);
    EXPECT_EQ(take(*connection), "Ugly.");
    connection->received(" better than?", now);
    EXPECT_EQ(take(*connection), "Complex.");
    EXPECT_EQ(counted(Counter::answered), 2u);
    EXPECT_EQ(counted(Counter::accepted), 1u);
    EXPECT_EQ(connection->fate(), Fate::keep);
}

TEST_F(ConnectionTest, EofAfterWholeQuestionsClosesAfterTheLastAnswer) {
    auto connection = open();
    connection->received(beautiful, now);
    connection->received_eof(now);  // a half-close: the answer is still owed
    EXPECT_EQ(connection->fate(), Fate::keep);
    EXPECT_FALSE(connection->wants_read());
    EXPECT_EQ(take(*connection), "Ugly.");
    EXPECT_EQ(connection->fate(), Fate::close);
    EXPECT_TRUE(logged("Client socket to " + client_name + " has closed"));
}

TEST_F(ConnectionTest, EofMidQuestionIsLoggedAsTheBookDoes) {
    auto connection = open();
    connection->received("Beautiful is better than", now);
    connection->received_eof(now);
    EXPECT_EQ(connection->fate(), Fate::close);
    EXPECT_TRUE(logged("Client " + client_name + " sent b'Beautiful is better than' but then closed"));
}

TEST_F(ConnectionTest, AnIoErrorIsLoggedAndCountedAsAReset) {
    auto connection = open();
    connection->received("Beautiful", now);
    connection->failed("[Errno 104] Connection reset by peer", now);
    EXPECT_EQ(connection->fate(), Fate::drop);
    EXPECT_TRUE(logged("Client " + client_name + " error: [Errno 104] Connection reset by peer"));
    EXPECT_EQ(counted(Counter::resets), 1u);
    EXPECT_EQ(counted(Counter::health_checks), 0u);
}

// The kernel gave up on a vanished peer (ETIMEDOUT; TCP_INFO said which timer): a timeout of its
// own kind, counted under the timeouts, never as a reset.
TEST_F(ConnectionTest, AVanishedIdlePeerIsAKeepaliveTimeoutNotAReset) {
    rules.tcp_keepalive = 7s;
    auto connection = open();
    connection->received(beautiful, now);
    EXPECT_EQ(take(*connection), "Ugly.");
    connection->failed("[Errno 110] Connection timed out", now + 3s, PeerSilence::probes_unanswered);
    EXPECT_EQ(connection->fate(), Fate::drop);
    EXPECT_TRUE(logged("Client " + client_name + " error: vanished: no reply to keepalive probes (--tcp-keepalive 7 s)"));
    EXPECT_FALSE(logged("Connection timed out"));
    EXPECT_EQ(counted(Counter::timeout_keepalive), 1u);
    EXPECT_EQ(counted(Counter::timeout_unacknowledged), 0u);
    EXPECT_EQ(counted(Counter::resets), 0u);
    EXPECT_EQ(tracker.sum(first_timeout, last_timeout), 1u);
}

TEST_F(ConnectionTest, AnAnswerNeverAcknowledgedIsAnUnacknowledgedTimeout) {
    auto connection = open();
    connection->received(beautiful, now);
    EXPECT_EQ(take(*connection), "Ugly.");
    connection->failed("[Errno 110] Connection timed out", now + 1s, PeerSilence::data_unacknowledged);
    EXPECT_TRUE(logged("Client " + client_name + " error: vanished: an answer unacknowledged for 5 s (--send-timeout)"));
    EXPECT_EQ(counted(Counter::timeout_unacknowledged), 1u);
    EXPECT_EQ(counted(Counter::timeout_keepalive), 0u);
    EXPECT_EQ(counted(Counter::resets), 0u);
}

// Probes while answers still wait to go are zero-window probes of a peer that takes none of them
// (alive or not): TCP_USER_TIMEOUT is the send limit, and the end is the send timeout's.
TEST_F(ConnectionTest, ProbesWhileAnswersWaitAreTheSendTimeout) {
    rules.limits.max_pending = 10;
    auto connection = open();
    connection->received("Simple is better than?Simple is better than?", now);
    ASSERT_FALSE(connection->output().empty());
    connection->failed("[Errno 110] Connection timed out", now + 1s, PeerSilence::probes_unanswered);
    EXPECT_TRUE(logged("Client " + client_name + " error: not reading its answers for 5 s"));
    EXPECT_EQ(counted(Counter::timeout_send), 1u);
    EXPECT_EQ(counted(Counter::timeout_unacknowledged), 0u);
    EXPECT_EQ(counted(Counter::timeout_keepalive), 0u);
}

// The kernel's retransmission limit (--send-timeout and --idle-timeout both 0: no TCP_USER_TIMEOUT).
TEST_F(ConnectionTest, WithoutASendLimitTheUnacknowledgedAnswerNamesTheKernel) {
    rules.send_timeout = 0s;
    rules.idle_timeout = 0s;
    EXPECT_EQ(client_socket_options(rules).user_timeout, 0ms);
    auto connection = open();
    connection->received(beautiful, now);
    take(*connection);
    connection->failed("[Errno 110] Connection timed out", now + 1s, PeerSilence::data_unacknowledged);
    EXPECT_TRUE(logged("error: vanished: an answer unacknowledged for the kernel's retransmissions"));
}

TEST(ClientSocketOptions, TheUserTimeoutIsTheSendLimitAndKeepaliveTheOption) {
    ConnectionRules rules;
    rules.tcp_keepalive = 45s;
    rules.send_timeout = 20s;
    rules.idle_timeout = 300s;
    EXPECT_EQ(client_socket_options(rules), (ClientSocketOptions{45s, 20s}));
    rules.idle_timeout = 9s;  // the shorter one bounds how long answers may wait
    EXPECT_EQ(client_socket_options(rules).user_timeout, 9s);
    rules.send_timeout = 0s;
    rules.idle_timeout = 300s;
    EXPECT_EQ(client_socket_options(rules).user_timeout, 300s);
    EXPECT_EQ(keepalive_interval(45s), 15s);
    EXPECT_EQ(keepalive_interval(2s), 1s);
}

// A load balancer's check connects and closes, or resets, having sent nothing.
TEST_F(ConnectionTest, AConnectionThatSendsNothingIsAHealthCheckNotAnError) {
    auto closed = open();
    closed->received_eof(now);
    EXPECT_EQ(closed->fate(), Fate::close);
    auto reset = open("127.0.0.1", 41286);
    reset->failed("[Errno 104] Connection reset by peer", now);
    EXPECT_EQ(reset->fate(), Fate::drop);
    EXPECT_FALSE(logged("error"));
    EXPECT_TRUE(logged("Client socket to ('127.0.0.1', 41286) has closed ([Errno 104] Connection reset by peer, "
                       "nothing sent)"));
    EXPECT_EQ(counted(Counter::health_checks), 2u);
    EXPECT_EQ(counted(Counter::resets), 0u);
}

// The histogram times an answer from the read that completed its question to the send that
// handed its last byte over, with the times the driver gave.
TEST_F(ConnectionTest, EachAnswerIsTimedFromItsQuestionToItsLastByteSent) {
    auto connection = open();
    connection->received("Beautiful is better than?Simple is better than?", now);
    const std::string answers(connection->output());
    ASSERT_EQ(answers, "Ugly.Complex.");
    connection->sent(3, now + 1ms);  // part of the first answer: nothing is done yet
    EXPECT_EQ(tracker.answers_in_bucket(answer_bucket(1'000'000)), 0u);
    connection->sent(answers.size() - 3, now + 2ms);
    EXPECT_EQ(tracker.answers_in_bucket(answer_bucket(2'000'000)), 2u);
    EXPECT_EQ(tracker.answer_ns_sum(), 4'000'000u);
    EXPECT_EQ(counted(Counter::bytes_received), 47u);
    EXPECT_EQ(counted(Counter::bytes_sent), answers.size());
}

// A deep pipeline's later reads join the last tracked one: every answer is still timed once,
// never as shorter than it took.
TEST_F(ConnectionTest, ADeepPipelinesAnswersAreAllTimedNoneShort) {
    auto connection = open();
    for (int i = 0; i < 6; ++i) connection->received(beautiful, now + std::chrono::milliseconds(i));
    take(*connection, now + 10ms);
    std::uint64_t timed = 0;
    for (std::size_t i = 0; i < answer_buckets; ++i) timed += tracker.answers_in_bucket(i);
    EXPECT_EQ(timed, 6u);
    EXPECT_GE(tracker.answer_ns_sum(), 6u * 5'000'000u);  // each answer waited at least 5 ms
}

TEST_F(ConnectionTest, BytesFramedByTheCallerAreAnsweredAndLimited) {
    rules.limits.max_question = 30;
    auto connection = open();
    connection->received_unframed("  Beautiful is ", now);  // leading whitespace is skipped
    connection->received_unframed("better than", now);
    connection->received("?", now);
    EXPECT_EQ(take(*connection), "Ugly.");
    connection->received_unframed("Simple is better than a question that", now);  // 37 bytes, no '?'
    EXPECT_EQ(take(*connection), "Error: question too long.");
}

// --- limits and lingering -------------------------------------------------------------------

TEST_F(ConnectionTest, BackpressureStopsReadingUntilAnswersAreTaken) {
    rules.limits.max_pending = 10;
    auto connection = open();
    connection->received("Simple is better than?Simple is better than?Beautiful is better than?", now);
    EXPECT_FALSE(connection->wants_read());  // 8 + 8 bytes pending >= 10
    EXPECT_EQ(connection->output(), "Complex.Complex.");
    connection->sent(16, now);
    EXPECT_EQ(take(*connection), "Ugly.");
    EXPECT_TRUE(connection->wants_read());
    // Answers made as the output drained are counted too, exactly once.
    EXPECT_EQ(counted(Counter::answered), 3u);
}

TEST_F(ConnectionTest, AQuestionTooLongIsAnsweredThenLingersOneSecond) {
    rules.limits.max_question = 30;
    auto connection = open();
    connection->received(std::string(31, 'x'), now);
    EXPECT_EQ(connection->fate(), Fate::keep);  // the error answer must leave first
    EXPECT_FALSE(connection->wants_read());
    EXPECT_EQ(take(*connection), "Error: question too long.");
    EXPECT_EQ(connection->fate(), Fate::linger);
    EXPECT_TRUE(connection->output().empty());
    EXPECT_TRUE(connection->wants_read());  // reading on, to discard
    EXPECT_EQ(connection->deadline(), now + 1s);
    connection->received("more bytes, dropped", now + 500ms);
    EXPECT_EQ(connection->fate(), Fate::linger);
    connection->tick(now + 999ms);
    EXPECT_EQ(connection->fate(), Fate::linger);
    connection->tick(now + 1s);
    EXPECT_EQ(connection->fate(), Fate::close);
    EXPECT_TRUE(logged("Client " + client_name + " error: question too long (over 30 bytes)"));
    EXPECT_EQ(counted(Counter::error_question_too_long), 1u);
}

TEST_F(ConnectionTest, TheLingerEndsAtTheClientsEof) {
    rules.limits.max_question = 30;
    auto connection = open();
    connection->received(std::string(40, 'x'), now);
    take(*connection);
    connection->received_eof(now + 10ms);
    EXPECT_EQ(connection->fate(), Fate::close);
}

TEST_F(ConnectionTest, BeyondMaxConnectionsTheClientIsToldBusyAndLingers) {
    rules.max_connections = 1;
    auto first = open();
    auto second = open("127.0.0.1", 41286);
    EXPECT_EQ(tracker.active(), 1);  // the busy one is never counted open
    EXPECT_FALSE(second->wants_read());
    EXPECT_EQ(second->fate(), Fate::keep);
    EXPECT_EQ(second->output(), "Error: server busy.");
    second->sent(6, now);
    EXPECT_EQ(take(*second), " server busy.");
    EXPECT_EQ(second->fate(), Fate::linger);
    second->received_eof(now + 5ms);
    EXPECT_EQ(second->fate(), Fate::close);
    EXPECT_TRUE(logged("Client ('127.0.0.1', 41286) refused: server busy (--max-connections 1)"));
    EXPECT_EQ(counted(Counter::refused_busy), 1u);
    EXPECT_EQ(counted(Counter::accepted), 1u);
}

TEST_F(ConnectionTest, ABusyClientThatNeverTakesTheAnswerIsDroppedAfterTheLinger) {
    rules.max_connections = 1;
    auto first = open();
    auto second = open("127.0.0.1", 41286);
    second->tick(now + 1s);
    EXPECT_EQ(second->fate(), Fate::drop);
}

TEST_F(ConnectionTest, ARefusedClientIsDroppedBeforeAByteIsRead) {
    rules.access.deny.push_back(Cidr::parse("all").value());
    auto connection = open();
    EXPECT_EQ(connection->fate(), Fate::drop);
    EXPECT_FALSE(connection->wants_read());
    EXPECT_TRUE(connection->output().empty());
    EXPECT_EQ(tracker.active(), 0);
    EXPECT_TRUE(logged("Client " + client_name + " refused: "));
    EXPECT_EQ(counted(Counter::refused_denied), 1u);
}

// --- timeouts -------------------------------------------------------------------------------

TEST_F(ConnectionTest, AStartedQuestionMustFinishWithinTheQuestionTimeout) {
    auto connection = open();
    connection->received("Beautiful is", now + 1s);
    EXPECT_EQ(connection->deadline(), now + 4s);
    connection->received(" better", now + 3s);  // trickling in does not move the deadline
    connection->tick(now + 3999ms);
    EXPECT_EQ(connection->fate(), Fate::keep);
    connection->tick(now + 4s);
    EXPECT_EQ(connection->fate(), Fate::drop);
    EXPECT_TRUE(logged("Client " + client_name + " error: question not finished within 3 s"));
    EXPECT_EQ(counted(Counter::timeout_question), 1u);
}

TEST_F(ConnectionTest, ASilentConnectionIsClosedAtTheIdleTimeout) {
    auto connection = open();
    connection->received(beautiful, now + 2s);
    take(*connection, now + 2s);
    EXPECT_EQ(connection->deadline(), now + 12s);
    connection->tick(now + 11s);
    EXPECT_EQ(connection->fate(), Fate::keep);
    connection->tick(now + 12s);
    EXPECT_EQ(connection->fate(), Fate::drop);
    EXPECT_TRUE(logged("Client " + client_name + " error: idle for 10 s"));
}

TEST_F(ConnectionTest, WhitespaceAloneIsSilence) {
    auto connection = open();
    for (int i = 1; i <= 9; ++i) connection->received(" ", now + std::chrono::seconds(i));  // a space a second
    EXPECT_EQ(connection->deadline(), now + 10s);
    connection->tick(now + 10s);
    EXPECT_EQ(connection->fate(), Fate::drop);
    EXPECT_TRUE(logged("Client " + client_name + " error: idle for 10 s"));
}

TEST_F(ConnectionTest, AnswersNotTakenAreDroppedAtTheSendTimeout) {
    auto connection = open();
    connection->received(beautiful, now);
    EXPECT_EQ(connection->deadline(), now + 5s);  // answers wait: the shorter send timeout
    connection->sent(2, now + 1s);                // some progress moves it
    EXPECT_EQ(connection->deadline(), now + 6s);
    connection->tick(now + 6s);
    EXPECT_EQ(connection->fate(), Fate::drop);
    EXPECT_TRUE(logged("Client " + client_name + " error: not reading its answers for 5 s"));
}

TEST_F(ConnectionTest, ZeroTimeoutsNeverCome) {
    rules.idle_timeout = 0s;
    rules.question_timeout = 0s;
    rules.send_timeout = 0s;
    auto connection = open();
    connection->received("Beautiful is", now);
    EXPECT_EQ(connection->deadline(), never);
}

TEST_F(ConnectionTest, AnErrorAfterADeadlineIsThatDeadlinesDoing) {
    auto connection = open();
    connection->received(beautiful, now);
    connection->failed("[Errno 32] Broken pipe", now + 5s);  // the driver cut it at the send timeout
    EXPECT_TRUE(logged("not reading its answers for 5 s"));
    EXPECT_FALSE(logged("Broken pipe"));
    EXPECT_EQ(counted(Counter::resets), 0u);
    EXPECT_EQ(counted(Counter::timeout_send), 1u);
}

// --- --wait ---------------------------------------------------------------------------------

TEST_F(ConnectionTest, WaitHoldsTheAnswersUntilTheirTime) {
    rules.wait = 500ms;
    auto connection = open();
    connection->received(beautiful, now);
    EXPECT_TRUE(connection->output().empty());
    EXPECT_EQ(connection->deadline(), now + 500ms);
    connection->tick(now + 500ms);
    EXPECT_EQ(take(*connection, now + 500ms), "Ugly.");
    // Two at once: one backend call each, one after the other, released together.
    connection->received("Simple is better than?Beautiful is better than?", now + 500ms);
    EXPECT_EQ(connection->deadline(), now + 1500ms);
    connection->tick(now + 1499ms);
    EXPECT_TRUE(connection->output().empty());
    connection->tick(now + 1500ms);
    EXPECT_EQ(take(*connection, now + 1500ms), "Complex.Ugly.");
}

// Found by the simulation (tests/sim, seeds 6 and 18): the error answer follows the held answers.
TEST_F(ConnectionTest, UnderWaitAQuestionTooLongIsAnsweredAfterTheHeldAnswers) {
    rules.wait = 500ms;
    rules.limits.max_question = 30;
    auto connection = open();
    connection->received("Beautiful is better than?" + std::string(40, 'x'), now);
    EXPECT_TRUE(connection->output().empty());  // "Ugly." is held for 500 ms, the error after it
    connection->tick(now + 500ms);
    EXPECT_EQ(take(*connection, now + 500ms), "Ugly.Error: question too long.");
    EXPECT_EQ(connection->fate(), Fate::linger);
    EXPECT_TRUE(logged("Client " + client_name + " error: question too long (over 30 bytes)"));
    // And with nothing held before it, at once.
    auto alone = open("127.0.0.1", 41286);
    alone->received(std::string(40, 'x'), now);
    EXPECT_EQ(take(*alone), "Error: question too long.");
}

// Found by the simulation (seeds 1 and 13): answers held longer than the send timeout were
// dropped as "not reading its answers" the moment they were released.
TEST_F(ConnectionTest, UnderWaitTheSendTimeoutRunsFromTheRelease) {
    rules.wait = 8s;  // longer than the send timeout (5 s)
    auto connection = open();
    connection->received(beautiful, now);
    connection->tick(now + 8s);
    EXPECT_EQ(connection->output(), "Ugly.");
    EXPECT_EQ(connection->fate(), Fate::keep);
    EXPECT_EQ(connection->deadline(), now + 13s);
    connection->tick(now + 13s);
    EXPECT_EQ(connection->fate(), Fate::drop);
    EXPECT_TRUE(logged("Client " + client_name + " error: not reading its answers for 5 s"));
}

// --- the PROXY header -----------------------------------------------------------------------

class ProxiedConnectionTest : public ConnectionTest {
protected:
    ProxiedConnectionTest() {
        rules.proxy.enabled = true;
        rules.proxy.trusted.push_back(Cidr::parse("127.0.0.1/32").value());
        rules.proxy.header_timeout = 2s;
    }
};

TEST_F(ProxiedConnectionTest, TheHeaderNamesTheClientAndWhatFollowsIsAnswered) {
    auto connection = open();
    EXPECT_FALSE(logged("Accepted"));
    EXPECT_EQ(connection->deadline(), now + 2s);
    connection->received("PROXY TCP4 198.18.0.7 127.0.0.1 5000 1060\r\nBeautiful is better than?", now);
    EXPECT_EQ(take(*connection), "Ugly.");
    EXPECT_EQ(connection->peer(), "('198.18.0.7', 5000)");
    EXPECT_TRUE(logged("Client ('198.18.0.7', 5000) comes through proxy " + client_name));
    EXPECT_TRUE(logged("Accepted connection from ('198.18.0.7', 5000)"));
}

TEST_F(ProxiedConnectionTest, AProxyWithoutAHeaderInTimeIsRefused) {
    auto connection = open();
    connection->received("PROXY TCP4 198.18", now + 1s);
    connection->tick(now + 2s);
    EXPECT_EQ(connection->fate(), Fate::drop);
    EXPECT_TRUE(logged("Client " + client_name + " refused: no PROXY header within 2 s"));
    EXPECT_EQ(counted(Counter::timeout_proxy_header), 1u);
}

TEST_F(ProxiedConnectionTest, ADirectClientsFirstBytesGetTheIdleTimeout) {
    auto connection = open("127.0.0.2", 6000);
    EXPECT_EQ(connection->deadline(), now + 10s);
    connection->tick(now + 10s);
    EXPECT_EQ(connection->fate(), Fate::drop);
    EXPECT_TRUE(logged("Client ('127.0.0.2', 6000) error: idle for 10 s"));
}

TEST_F(ProxiedConnectionTest, AHeaderCutShortIsLogged) {
    auto connection = open();
    connection->received("PROXY TCP4", now);
    connection->received_eof(now);
    EXPECT_EQ(connection->fate(), Fate::drop);
    EXPECT_TRUE(logged("Client socket to " + client_name + " closed before its PROXY header was complete"));
}

// --- the drain ------------------------------------------------------------------------------

TEST_F(ConnectionTest, TheDrainAnswersWhatHasArrivedThenClosesAndLingers) {
    auto connection = open();
    connection->received(beautiful, now);
    connection->stop(now + 10ms, now + 5s);
    EXPECT_TRUE(connection->reads_without_waiting());
    connection->received(simple, now + 10ms);  // it had arrived before the stop
    EXPECT_EQ(take(*connection, now + 10ms), "Ugly.Complex.");
    EXPECT_EQ(connection->fate(), Fate::keep);
    connection->nothing_to_read(now + 10ms);
    EXPECT_EQ(connection->fate(), Fate::linger);
    EXPECT_EQ(connection->deadline(), now + 1010ms);  // the linger, within the drain
    EXPECT_TRUE(logged("Client socket to " + client_name + " closed: server stopping"));
}

TEST_F(ConnectionTest, TheDrainDeliversAnswersHeldByWait) {
    rules.wait = 500ms;
    auto connection = open();
    connection->received("Simple is better than?Beautiful is better than?", now);
    connection->stop(now + 100ms, now + 5s);
    connection->nothing_to_read(now + 100ms);
    EXPECT_EQ(connection->fate(), Fate::keep);  // two answers are still owed
    EXPECT_EQ(connection->deadline(), now + 1s);
    connection->tick(now + 1s);
    EXPECT_EQ(take(*connection, now + 1s), "Complex.Ugly.");
    EXPECT_EQ(connection->fate(), Fate::linger);
    EXPECT_TRUE(logged("closed: server stopping"));
    EXPECT_FALSE(logged("not reading its answers"));
}

TEST_F(ConnectionTest, TheDrainDropsAClientThatNeverReadsAtTheDrainDeadline) {
    auto connection = open();
    connection->received(beautiful, now);
    connection->stop(now, now + 2s);
    connection->nothing_to_read(now);
    EXPECT_EQ(connection->output(), "Ugly.");
    EXPECT_EQ(connection->deadline(), now + 2s);  // the send timeout (5 s) no longer counts
    connection->tick(now + 2s);
    EXPECT_EQ(connection->fate(), Fate::drop);
    EXPECT_TRUE(logged("Client " + client_name + " error: not reading its answers; closed as the server stops"));
}

TEST_F(ConnectionTest, TheDrainOfAClientThatHalfClosedEndsAsAClose) {
    auto connection = open();
    connection->received(beautiful, now);
    connection->received_eof(now);
    connection->stop(now, now + 2s);
    EXPECT_FALSE(connection->reads_without_waiting());
    EXPECT_EQ(take(*connection), "Ugly.");
    EXPECT_EQ(connection->fate(), Fate::close);
    EXPECT_TRUE(logged("has closed"));
}

TEST_F(ProxiedConnectionTest, TheDrainClosesAHalfReadHeaderQuietly) {
    auto connection = open();
    connection->received("PROXY TCP4 198.18.0.7 127.0", now);
    connection->stop(now, now + 2s);
    EXPECT_TRUE(connection->reads_without_waiting());
    connection->nothing_to_read(now);
    EXPECT_EQ(connection->fate(), Fate::drop);
    EXPECT_FALSE(logged("Accepted"));
    EXPECT_FALSE(logged("error"));
}

TEST_F(ProxiedConnectionTest, TheDrainAnswersAHeaderAndQuestionThatHadArrived) {
    auto connection = open();
    connection->received("PROXY TCP4 198.18.0.7 127.0", now);
    connection->stop(now, now + 2s);
    connection->received(".0.1 5000 1060\r\nSimple is better than?", now);
    EXPECT_EQ(take(*connection), "Complex.");
    connection->nothing_to_read(now);
    EXPECT_EQ(connection->fate(), Fate::linger);
    EXPECT_TRUE(logged("Client socket to ('198.18.0.7', 5000) closed: server stopping"));
}

// --- the tracker ----------------------------------------------------------------------------

TEST_F(ConnectionTest, IsCountedOpenForExactlyItsLifeAndClosesAtTheLastTimeItWasTold) {
    {
        auto connection = open();
        EXPECT_EQ(tracker.active(), 1);
        connection->received_eof(now + 1s);
        EXPECT_EQ(tracker.active(), 1);  // until the driver lets it go
    }
    EXPECT_EQ(tracker.active(), 0);
}

}  // namespace
}  // namespace zen
