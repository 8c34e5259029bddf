// The asynchat-style splitting (src/loop/chat.hpp): bytes go in through data_received() exactly
// as the transport would hand them over, whole, one byte at a time, and split at every point,
// and the collect_incoming_data() pieces and found_terminator() calls that come out must tell
// the same story whatever the split. The channel needs a transport (it asks whether it is
// closed, and push() writes to it): a real one, on a socketpair whose other end the test holds.
#include <gtest/gtest.h>

#include <sys/socket.h>

#include <functional>
#include <memory>
#include <ostream>
#include <stdexcept>
#include <string>
#include <vector>

#include "loop/chat.hpp"
#include "loop/event_loop.hpp"
#include "loop/transport.hpp"
#include "net/listener.hpp"

namespace zen {
namespace {

// A collect_incoming_data(text) or, with terminator set, a found_terminator().
struct Event {
    bool terminator = false;
    std::string text;
    bool operator==(const Event&) const = default;
};

// Messages between terminators, the way a channel assembles them. Only what the pieces add up
// to counts: how a message was cut into pieces depends on the reads.
struct Story {
    std::vector<std::string> messages;  // each ended by found_terminator()
    std::string unfinished;             // collected after the last terminator
    bool operator==(const Story&) const = default;
};

void PrintTo(const Event& event, std::ostream* out) {
    *out << (event.terminator ? std::string("terminator") : "data \"" + event.text + "\"");
}

void PrintTo(const Story& story, std::ostream* out) {
    *out << "{";
    for (const std::string& message : story.messages) *out << "\"" << message << "\"| ";
    *out << "unfinished \"" << story.unfinished << "\"}";
}

Story story_of(const std::vector<Event>& events) {
    Story story;
    for (const Event& event : events) {
        if (event.terminator) {
            story.messages.push_back(story.unfinished);
            story.unfinished.clear();
        } else {
            story.unfinished += event.text;
        }
    }
    return story;
}

class RecordingChat : public loop::AsyncChat {
public:
    explicit RecordingChat(std::vector<Event>& events) : events_(events) {}
    void collect_incoming_data(std::string_view data) override {
        events_.push_back({false, std::string(data)});
        if (on_collect) on_collect(data);
    }
    void found_terminator() override {
        events_.push_back({true, {}});
        if (on_terminator) on_terminator(*this);
    }
    void connection_lost(std::string_view) override {}
    void eof_received() override {}

    std::function<void(std::string_view)> on_collect;
    std::function<void(RecordingChat&)> on_terminator;

private:
    std::vector<Event>& events_;
};

class AsyncChat : public ::testing::Test {
protected:
    // A fresh channel on a fresh transport (every feeding starts from a channel that saw nothing).
    RecordingChat& open(const std::string& terminator) {
        transport_.reset();
        events.clear();
        int fds[2] = {-1, -1};
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) throw std::runtime_error("socketpair");
        peer_.reset(fds[1]);
        auto chat = std::make_unique<RecordingChat>(events);
        RecordingChat* raw = chat.get();
        raw->set_terminator(terminator);
        transport_ = std::make_unique<loop::Transport>(loop_, AcceptedClient{Fd(fds[0]), SocketAddress{}}, std::move(chat));
        transport_->start();  // connection_made: the channel has its transport
        return *raw;
    }

    // Feeds the pieces, in order, to a fresh channel; returns what it made of them.
    std::vector<Event> feed(const std::string& terminator, const std::vector<std::string>& pieces) {
        RecordingChat& chat = open(terminator);
        for (const std::string& piece : pieces) chat.data_received(piece);
        return events;
    }
    Story story(const std::string& terminator, const std::vector<std::string>& pieces) {
        return story_of(feed(terminator, pieces));
    }

    // The stream whole, split at every point into two reads and at every pair of points into
    // three, and one byte per read: every feeding must tell `expected`.
    void expect_every_split(const std::string& terminator, const std::string& stream, const Story& expected) {
        EXPECT_EQ(story(terminator, {stream}), expected) << "whole";
        for (std::size_t i = 0; i <= stream.size(); ++i) {
            EXPECT_EQ(story(terminator, {stream.substr(0, i), stream.substr(i)}), expected) << "split at " << i;
        }
        for (std::size_t i = 1; i < stream.size(); ++i) {
            for (std::size_t j = i + 1; j < stream.size(); ++j) {
                EXPECT_EQ(story(terminator, {stream.substr(0, i), stream.substr(i, j - i), stream.substr(j)}), expected)
                    << "split at " << i << " and " << j;
            }
        }
        std::vector<std::string> bytes;
        for (char c : stream) bytes.emplace_back(1, c);
        EXPECT_EQ(story(terminator, bytes), expected) << "byte by byte";
    }

    std::string peer_read() {
        std::string got;
        char buffer[4096];
        ssize_t n;
        while ((n = ::recv(peer_.get(), buffer, sizeof buffer, 0)) > 0) got.append(buffer, static_cast<std::size_t>(n));
        return got;
    }

    loop::EventLoop loop_;
    std::vector<Event> events;
    std::unique_ptr<loop::Transport> transport_;
    Fd peer_;
};

// --- the split, whatever the reads ----------------------------------------------------------

TEST_F(AsyncChat, SplitsAtAOneByteTerminatorWhateverTheReads) {
    expect_every_split("?", "Beautiful is better than?Explicit?", {{"Beautiful is better than", "Explicit"}, ""});
    // Empty messages, and data after the last terminator (collected: no '?' can start there).
    expect_every_split("?", "??Simple is better than?Complex", {{"", "", "Simple is better than"}, "Complex"});
}

TEST_F(AsyncChat, SplitsAtCrLfWhateverTheReads) {
    expect_every_split("\r\n", "Beautiful is better than\r\nExplicit\r\n",
                       {{"Beautiful is better than", "Explicit"}, ""});
    // A lone '\r' and a lone '\n' are data; "\r\r\n" ends a message in '\r'.
    expect_every_split("\r\n", "a\rb\r\r\n\n\r\n\r\r\nend", {{"a\rb\r", "\n", "\r"}, "end"});
}

TEST_F(AsyncChat, SplitsAtAThreeByteTerminatorWhateverTheReads) {
    expect_every_split("END", "Beautiful is better thanENDExplicitEND",
                       {{"Beautiful is better than", "Explicit"}, ""});
    // Beginnings of the terminator that come to nothing, one right before a real terminator,
    // and two terminators back to back.
    expect_every_split("END", "EN ENENDEEENDENDNDx", {{"EN EN", "EE", ""}, "NDx"});
}

// The pieces hold the bytes in order, none lost or doubled, and a terminator's bytes are never
// part of them. Checked directly, not only against another feeding.
TEST_F(AsyncChat, PiecesAreTheBytesBetweenTerminators) {
    const auto fed = feed("END", {"Beautiful is", " better thanE", "NDExp", "licitEN", "D"});
    EXPECT_EQ(fed, (std::vector<Event>{{false, "Beautiful is"},
                                       {false, " better than"},
                                       {true, ""},
                                       {false, "Exp"},
                                       {false, "licit"},
                                       {true, ""}}));
}

// A terminator's beginning at the end of a read is held back, and handed over as data once the
// next read shows it was not a terminator after all.
TEST_F(AsyncChat, APartialTerminatorFollowedByOtherBytesIsData) {
    RecordingChat& chat = open("\r\n");
    chat.data_received("Beautiful\r");
    EXPECT_EQ(events, (std::vector<Event>{{false, "Beautiful"}}));  // the '\r' waits
    chat.data_received("x\r\n");
    EXPECT_EQ(story_of(events), (Story{{"Beautiful\rx"}, ""}));  // the '\r' was data after all

    RecordingChat& three = open("END");
    three.data_received("BetterEN");
    EXPECT_EQ(story_of(events), (Story{{}, "Better"}));
    three.data_received("Ex");  // "EN" was data; the 'E' after it starts nothing either
    EXPECT_EQ(story_of(events), (Story{{}, "BetterENEx"}));
    three.data_received("END");
    EXPECT_EQ(story_of(events), (Story{{"BetterENEx"}, ""}));
}

// "EN" then "END": the held-back "EN" is data, and the terminator begins with the new read.
TEST_F(AsyncChat, AFailedPartialTerminatorMayBeFollowedByARealOne) {
    RecordingChat& chat = open("END");
    chat.data_received("xEN");
    chat.data_received("END");
    EXPECT_EQ(story_of(events), (Story{{"xEN"}, ""}));
}

// A terminator that overlaps itself ("aab": a prefix "aa" whose own tail "a" is a prefix
// too). Fed "aa" then "ab", the held-back "aa" fails to continue into "aab", but its second
// 'a' begins the terminator "a" + "ab". Python's asynchat keeps the unread tail in its buffer
// and finds it; this channel hands both held-back bytes over as data and then misses the
// terminator. DISABLED: this fails on the current code (see the report); enable once fixed.
TEST_F(AsyncChat, SplitsAtASelfOverlappingTerminatorWhateverTheReads) {
    EXPECT_EQ(story("aab", {"aaab"}), (Story{{"a"}, ""}));
    EXPECT_EQ(story("aab", {"aa", "ab"}), (Story{{"a"}, ""}));
    expect_every_split("aab", "xaaabyaabz", {{"xa", "y"}, "z"});
    expect_every_split("--\n", "text---\nmore--\n", {{"text-", "more"}, ""});
}

// --- the rest of the channel ----------------------------------------------------------------

TEST_F(AsyncChat, AnEmptyTerminatorCollectsEverything) {
    RecordingChat& chat = open("");
    chat.data_received("Beautiful?\r\n");
    chat.data_received("END");
    EXPECT_EQ(story_of(events), (Story{{}, "Beautiful?\r\nEND"}));
}

// asynchat's way to read a header then a body: found_terminator() changes the terminator, and
// the rest of the same read is split at the new one.
TEST_F(AsyncChat, ATerminatorChangedInFoundTerminatorAppliesToTheRestOfTheRead) {
    RecordingChat& chat = open("?");
    chat.on_terminator = [](RecordingChat& self) { self.set_terminator(self.terminator() == "?" ? "!" : "?"); };
    chat.data_received("a?b?c!d?e");
    EXPECT_EQ(story_of(events), (Story{{"a", "b?c", "d"}, "e"}));
}

// Once the transport has closed (here from found_terminator), the rest of the read is dropped.
TEST_F(AsyncChat, NothingIsHandedOverOnceTheTransportClosed) {
    RecordingChat& chat = open("?");
    chat.on_terminator = [](RecordingChat& self) { self.close_when_done(); };
    chat.data_received("Beautiful is better than?Explicit is better than?");
    EXPECT_TRUE(transport_->closed());
    EXPECT_EQ(story_of(events), (Story{{"Beautiful is better than"}, ""}));
}

// Through the socket and the loop: pushes answer each message, and reach the peer in order.
TEST_F(AsyncChat, PushedAnswersReachThePeer) {
    RecordingChat& chat = open("?");
    std::string message;
    chat.on_collect = [&](std::string_view data) { message += data; };
    chat.on_terminator = [&](RecordingChat& self) {
        self.push(message == "Beautiful is better than" ? "Ugly." : "Implicit.");
        message.clear();
    };
    ASSERT_EQ(::send(peer_.get(), "Beautiful is better than?Expl", 29, 0), 29);
    loop_.call_soon([this] { loop_.stop(); });
    ASSERT_TRUE(loop_.run());
    ASSERT_EQ(::send(peer_.get(), "icit is better than?", 20, 0), 20);
    loop_.call_soon([this] { loop_.stop(); });
    ASSERT_TRUE(loop_.run());
    EXPECT_EQ(peer_read(), "Ugly.Implicit.");
}

}  // namespace
}  // namespace zen
