// The Zen session fed bytes in memory: whole, one byte at a time, split at every point.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "proto/session.hpp"

namespace zen {
namespace {

const AphorismTable& book() {
    static const AphorismTable table = AphorismTable::book_defaults();
    return table;
}

// Takes every pending byte, as a driver whose sends always succeed would.
std::string take_output(Session& session) {
    std::string out(session.pending_output());
    session.consume_output(out.size());
    return out;
}

// Feeds the pieces in order then EOF, draining output as it goes; returns everything sent.
std::string converse(Session& session, const std::vector<std::string>& pieces, bool eof = true) {
    std::string out;
    for (const std::string& piece : pieces) {
        session.receive(piece);
        out += take_output(session);
    }
    if (eof) session.receive_eof();
    out += take_output(session);
    return out;
}

std::string repeat(std::string_view text, std::size_t times) {
    std::string out;
    for (std::size_t i = 0; i < times; ++i) out.append(text);
    return out;
}

TEST(Session, AnswersEachOfTheBooksQuestions) {
    Session session(book(), {});
    session.receive("Beautiful is better than?");
    EXPECT_EQ(take_output(session), "Ugly.");
    session.receive("Explicit is better than?");
    EXPECT_EQ(take_output(session), "Implicit.");
    session.receive("Simple is better than?");
    EXPECT_EQ(take_output(session), "Complex.");
    EXPECT_EQ(session.answered(), 3u);
    EXPECT_EQ(session.status(), Session::Status::open);
    EXPECT_FALSE(session.done());
}

TEST(Session, UnknownQuestionsGetTheErrorAnswer) {
    Session session(book(), {});
    EXPECT_EQ(converse(session, {"Ugly is better than?", "beautiful is better than?", "?"}),
              "Error: unknown aphorism.Error: unknown aphorism.Error: unknown aphorism.");
    EXPECT_EQ(session.status(), Session::Status::finished);
}

TEST(Session, TwoQuestionsInOneBufferGetTwoAnswers) {
    Session session(book(), {});
    EXPECT_EQ(converse(session, {"Beautiful is better than?Simple is better than?"}), "Ugly.Complex.");
}

TEST(Session, OneByteAtATime) {
    const std::string stream = "Beautiful is better than?\r\nUnknown?Simple is better than?";
    Session session(book(), {});
    std::vector<std::string> bytes;
    for (const char c : stream) bytes.emplace_back(1, c);
    EXPECT_EQ(converse(session, bytes), "Ugly.Error: unknown aphorism.Complex.");
    EXPECT_EQ(session.status(), Session::Status::finished);
}

TEST(Session, EverySplitIntoTwoAndThreePiecesGivesTheSameAnswers) {
    const std::string stream =
        "Beautiful is better than?\n  Explicit is better than?Nope?\r\n\tSimple is better than?\n";
    const std::string expected = "Ugly.Implicit.Error: unknown aphorism.Complex.";
    for (std::size_t i = 0; i <= stream.size(); ++i) {
        Session session(book(), {});
        EXPECT_EQ(converse(session, {stream.substr(0, i), stream.substr(i)}), expected) << "split at " << i;
        EXPECT_EQ(session.status(), Session::Status::finished) << "split at " << i;
    }
    const std::string shorter = "Simple is better than?X?";
    for (std::size_t i = 0; i <= shorter.size(); ++i) {
        for (std::size_t j = i; j <= shorter.size(); ++j) {
            Session session(book(), {});
            EXPECT_EQ(converse(session, {shorter.substr(0, i), shorter.substr(i, j - i), shorter.substr(j)}),
                      "Complex.Error: unknown aphorism.")
                << "splits at " << i << ", " << j;
        }
    }
}

TEST(Session, TenThousandQuestionsInOneBufferAreAnsweredInOrder) {
    const std::string_view questions[] = {"Beautiful is better than?", "Explicit is better than?",
                                          "Simple is better than?", "What?"};
    const std::string_view answers[] = {"Ugly.", "Implicit.", "Complex.", "Error: unknown aphorism."};
    std::string stream;
    std::string expected;
    for (int i = 0; i < 10'000; ++i) {
        stream.append(questions[i % 4]);
        expected.append(answers[i % 4]);
    }
    Session session(book(), {.max_question = 4096, .max_pending = std::size_t{1} << 30});
    session.receive(stream);
    EXPECT_TRUE(take_output(session) == expected);
    EXPECT_EQ(session.answered(), 10'000u);
}

TEST(Session, NulBytesAndBinaryJunkMakeUnknownQuestions) {
    Session session(book(), {});
    std::string junk;
    for (int i = 0; i < 256; ++i) {
        if (i != '?') junk.push_back(static_cast<char>(i));
    }
    EXPECT_EQ(converse(session, {std::string("\0?", 2), junk + "?", "\xff\xfe?", "Beautiful is better than?"}),
              "Error: unknown aphorism.Error: unknown aphorism.Error: unknown aphorism.Ugly.");
}

TEST(Session, NulInsideAKnownQuestionIsADifferentQuestion) {
    Session session(book(), {});
    EXPECT_EQ(converse(session, {std::string("Beautiful is better\0than?", 25)}), "Error: unknown aphorism.");
}

TEST(Session, LeadingWhitespaceIsSkippedButInnerWhitespaceCounts) {
    Session session(book(), {});
    EXPECT_EQ(converse(session, {" \t\r\nBeautiful is better than?", "\n\nSimple  is better than?"}),
              "Ugly.Error: unknown aphorism.");
}

TEST(Session, WhitespaceOnlyThenEofIsANormalClose) {
    Session session(book(), {});
    EXPECT_EQ(converse(session, {"Beautiful is better than?", "\r\n", "  \t"}), "Ugly.");
    EXPECT_EQ(session.status(), Session::Status::finished);
    EXPECT_TRUE(session.done());
}

TEST(Session, EofWithNothingSentIsANormalClose) {
    Session session(book(), {});
    session.receive_eof();
    EXPECT_EQ(session.status(), Session::Status::finished);
    EXPECT_TRUE(session.done());
    EXPECT_TRUE(session.pending_output().empty());
}

TEST(Session, PartialQuestionAtEofIsReportedWithoutItsLeadingWhitespace) {
    Session session(book(), {});
    EXPECT_EQ(converse(session, {"Simple is better than?\r\n", "Beautiful is ", "better than"}), "Complex.");
    EXPECT_EQ(session.status(), Session::Status::partial_at_eof);
    EXPECT_EQ(session.unanswered_bytes(), "Beautiful is better than");
    EXPECT_TRUE(session.done());
}

TEST(Session, InputAfterEofIsIgnored) {
    Session session(book(), {});
    session.receive_eof();
    session.receive("Beautiful is better than?");
    EXPECT_TRUE(session.pending_output().empty());
    EXPECT_EQ(session.status(), Session::Status::finished);
}

TEST(Session, HalfCloseAfterPipelinedQuestionsStillAnswersThemAll) {
    Session session(book(), {});
    session.receive("Beautiful is better than?Explicit is better than?");
    session.receive_eof();
    EXPECT_FALSE(session.done());  // answers not yet taken
    EXPECT_EQ(take_output(session), "Ugly.Implicit.");
    EXPECT_TRUE(session.done());
    EXPECT_EQ(session.status(), Session::Status::finished);
}

TEST(Session, QuestionOfExactlyMaxQuestionBytesIsAnswered) {
    for (const std::size_t limit : {std::size_t{32}, std::size_t{4096}}) {
        Session session(book(), {.max_question = limit, .max_pending = 65536});
        const std::string question = std::string(limit - 1, 'q') + "?";
        EXPECT_EQ(converse(session, {question, "Beautiful is better than?"}), "Error: unknown aphorism.Ugly.")
            << "limit " << limit;
        EXPECT_EQ(session.status(), Session::Status::finished);
    }
}

TEST(Session, QuestionOneBytePastTheLimitIsTooLong) {
    for (const std::size_t limit : {std::size_t{32}, std::size_t{4096}}) {
        Session session(book(), {.max_question = limit, .max_pending = 65536});
        const std::string question = std::string(limit, 'q') + "?";
        EXPECT_EQ(converse(session, {question}), "Error: question too long.") << "limit " << limit;
        EXPECT_EQ(session.status(), Session::Status::too_long);
    }
}

TEST(Session, TooLongIsFoundWhateverTheSplit) {
    const std::string stream = "Simple is better than?" + std::string(40, 'x') + "?";
    for (std::size_t i = 0; i <= stream.size(); ++i) {
        Session session(book(), {.max_question = 32, .max_pending = 65536});
        EXPECT_EQ(converse(session, {stream.substr(0, i), stream.substr(i)}), "Complex.Error: question too long.")
            << "split at " << i;
        EXPECT_EQ(session.status(), Session::Status::too_long);
    }
}

TEST(Session, FiveThousandBytesWithoutAQuestionMarkAreTooLongBeforeEof) {
    Session session(book(), {});
    session.receive(std::string(5000, 'x'));
    EXPECT_EQ(session.status(), Session::Status::too_long);
    EXPECT_FALSE(session.wants_input());
    EXPECT_EQ(take_output(session), "Error: question too long.");
    EXPECT_TRUE(session.done());
}

TEST(Session, TooLongAfterAnswersKeepsTheAnswersAndIgnoresTheRest) {
    Session session(book(), {});
    session.receive("Beautiful is better than?" + std::string(4097, 'x'));
    session.receive("Simple is better than?");
    EXPECT_EQ(take_output(session), "Ugly.Error: question too long.");
    EXPECT_EQ(session.answered(), 1u);
}

TEST(Session, DribbledTooLongQuestionIsCaughtOneByteAfterTheLimit) {
    Session session(book(), {.max_question = 32, .max_pending = 65536});
    for (int i = 0; i < 32; ++i) {
        session.receive("x");
        ASSERT_EQ(session.status(), Session::Status::open) << "after " << i + 1 << " bytes";
        EXPECT_TRUE(session.has_partial_question());
    }
    session.receive("x");
    EXPECT_EQ(session.status(), Session::Status::too_long);
}

TEST(Session, BackpressureStopsAnsweringAtMaxPendingAndLosesNothing) {
    Session session(book(), {.max_question = 4096, .max_pending = 10});
    const std::string stream = repeat("Beautiful is better than?", 1000);
    session.receive(stream);
    EXPECT_FALSE(session.wants_input());
    EXPECT_FALSE(session.has_partial_question());  // held back, not incomplete
    EXPECT_LE(session.pending_output().size(), 10u + 5u);
    std::string out;
    std::size_t chunk = 1;
    while (!session.pending_output().empty()) {
        const std::size_t n = std::min(chunk, session.pending_output().size());
        out.append(session.pending_output().substr(0, n));
        session.consume_output(n);
        EXPECT_LE(session.pending_output().size(), 10u + 5u);
        chunk = chunk % 7 + 2;  // odd sizes
    }
    EXPECT_TRUE(out == repeat("Ugly.", 1000));
    EXPECT_TRUE(session.wants_input());
    EXPECT_EQ(session.answered(), 1000u);
}

TEST(Session, EofWhileBackpressuredStillAnswersEverythingThenFinishes) {
    Session session(book(), {.max_question = 4096, .max_pending = 16});
    session.receive(repeat("Simple is better than?", 200) + "Beautiful");
    session.receive_eof();
    EXPECT_EQ(session.status(), Session::Status::open);
    EXPECT_FALSE(session.done());
    std::string out;
    for (int guard = 0; guard < 10'000 && !session.done(); ++guard) out += take_output(session);
    EXPECT_TRUE(out == repeat("Complex.", 200));
    EXPECT_EQ(session.status(), Session::Status::partial_at_eof);
    EXPECT_EQ(session.unanswered_bytes(), "Beautiful");
}

TEST(Session, EofWhileBackpressuredWithOnlyWholeQuestionsFinishes) {
    Session session(book(), {.max_question = 4096, .max_pending = 5});
    session.receive("Beautiful is better than?Beautiful is better than?");
    session.receive_eof();
    EXPECT_EQ(take_output(session), "Ugly.");
    EXPECT_FALSE(session.done());
    EXPECT_EQ(take_output(session), "Ugly.");
    EXPECT_TRUE(session.done());
    EXPECT_EQ(session.status(), Session::Status::finished);
}

TEST(Session, PartialSendsKeepTheOutputInOrder) {
    Session session(book(), {});
    session.receive("Explicit is better than?");
    session.consume_output(3);
    EXPECT_EQ(session.pending_output(), "licit.");
    session.receive("Simple is better than?");
    EXPECT_EQ(take_output(session), "licit.Complex.");
}

TEST(Session, HasPartialQuestionTracksAnUnfinishedQuestion) {
    Session session(book(), {});
    EXPECT_FALSE(session.has_partial_question());
    session.receive("\r\n ");
    EXPECT_FALSE(session.has_partial_question());  // whitespace is not a question yet
    session.receive("Simple");
    EXPECT_TRUE(session.has_partial_question());
    session.receive(" is better than?");
    EXPECT_FALSE(session.has_partial_question());
    take_output(session);
}

TEST(Session, WantsInputUntilTheConversationEnds) {
    Session session(book(), {});
    EXPECT_TRUE(session.wants_input());
    session.receive("Beautiful is better than?");
    EXPECT_TRUE(session.wants_input());
    session.receive_eof();
    EXPECT_FALSE(session.wants_input());
}

TEST(Session, UsesACustomTable) {
    auto table = AphorismTable::parse("Now is better than? Never.\nFlat is better than? Nested.\n");
    ASSERT_TRUE(table) << table.error();
    Session session(*table, {});
    EXPECT_EQ(converse(session, {"Flat is better than?Now is better than?Beautiful is better than?"}),
              "Nested.Never.Error: unknown aphorism.");
}

}  // namespace
}  // namespace zen
