#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>

#include "proto/aphorisms.hpp"

namespace zen {
namespace {

TEST(Aphorisms, BookDefaultsAnswerTheBooksThree) {
    const AphorismTable table = AphorismTable::book_defaults();
    EXPECT_EQ(table.size(), 3u);
    EXPECT_EQ(table.answer("Beautiful is better than?"), "Ugly.");
    EXPECT_EQ(table.answer("Explicit is better than?"), "Implicit.");
    EXPECT_EQ(table.answer("Simple is better than?"), "Complex.");
    EXPECT_EQ(table.answer("Complex is better than?"), "Error: unknown aphorism.");
    EXPECT_EQ(table.answer("Beautiful is better than"), "Error: unknown aphorism.");
    EXPECT_EQ(table.longest_question(), 25u);
}

TEST(Aphorisms, ParsesCommentsBlankLinesAndCrlf) {
    auto table = AphorismTable::parse("# comment\r\n\r\nFlat is better than?   Nested.  \r\n\n   \nNow is better than?Never.");
    ASSERT_TRUE(table) << table.error();
    EXPECT_EQ(table->size(), 2u);
    EXPECT_EQ(table->answer("Flat is better than?"), "Nested.");
    EXPECT_EQ(table->answer("Now is better than?"), "Never.");
    EXPECT_EQ(table->answer("Beautiful is better than?"), "Error: unknown aphorism.");
}

struct BadFile {
    std::string text;
    std::string message;  // expected in the error, line number included
};

void PrintTo(const BadFile& file, std::ostream* out) { *out << file.message; }

class AphorismErrors : public ::testing::TestWithParam<BadFile> {};

TEST_P(AphorismErrors, NameTheLine) {
    auto table = AphorismTable::parse(GetParam().text);
    ASSERT_FALSE(table);
    EXPECT_NE(table.error().find(GetParam().message), std::string::npos) << table.error();
}

INSTANTIATE_TEST_SUITE_P(
    Aphorisms, AphorismErrors,
    ::testing::Values(BadFile{"A? B.\n# c\nno question mark here.\n", "line 3: no '?'"},
                      BadFile{"A? B.\nC?\n", "line 2: no answer"},
                      BadFile{"A?   \n", "line 1: no answer"},
                      BadFile{"A? B\n", "line 1: the answer must end with '.'"},
                      BadFile{"A? B.\n\nC? D.E.\n", "line 3: the answer may contain only one '.'"},
                      BadFile{"A? B.\nA? C.\n", "line 2: duplicate question \"A?\""},
                      BadFile{"A? B.\n  C? D.\n", "line 2: a question may not start with whitespace"},
                      BadFile{"", "no aphorisms"},
                      BadFile{"# only a comment\n\n", "no aphorisms"}),
    [](const ::testing::TestParamInfo<BadFile>& info) { return "case" + std::to_string(info.index); });

TEST(Aphorisms, LongestQuestionCountsTheQuestionMark) {
    auto table = AphorismTable::parse("Short? A.\nA much longer question? B.\n");
    ASSERT_TRUE(table);
    EXPECT_EQ(table->longest_question(), std::string("A much longer question?").size());
}

TEST(Aphorisms, LoadFileReportsAMissingFileByPath) {
    auto table = AphorismTable::load_file("/nonexistent/dir/zen-aphorisms.txt");
    ASSERT_FALSE(table);
    EXPECT_NE(table.error().find("/nonexistent/dir/zen-aphorisms.txt"), std::string::npos) << table.error();
}

TEST(Aphorisms, LoadFileReadsAFileAndPrefixesErrorsWithItsPath) {
    const std::string path = ::testing::TempDir() + "zen-aphorisms-" + std::to_string(::getpid()) + ".txt";
    {
        std::ofstream file(path);
        file << "Readability counts? Always.\n";
    }
    auto good = AphorismTable::load_file(path);
    ASSERT_TRUE(good) << good.error();
    EXPECT_EQ(good->answer("Readability counts?"), "Always.");
    {
        std::ofstream file(path);
        file << "Readability counts? Always\n";
    }
    auto bad = AphorismTable::load_file(path);
    std::remove(path.c_str());
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().rfind(path + ": line 1:", 0), 0u) << bad.error();
}

TEST(Aphorisms, LoadFileReadsOnlyABoundedRegularFile) {
    auto table = AphorismTable::load_file("/dev/zero");  // never ends: refused before a byte is read
    ASSERT_FALSE(table);
    EXPECT_EQ(table.error(), "aphorism file: /dev/zero is a character device, not a regular file");
    table = AphorismTable::load_file(::testing::TempDir());
    ASSERT_FALSE(table);
    EXPECT_NE(table.error().find("is a directory"), std::string::npos) << table.error();
    const std::string fifo = ::testing::TempDir() + "zen-aphorisms-fifo-" + std::to_string(::getpid());
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    table = AphorismTable::load_file(fifo);  // returns at once: no writer is awaited
    ::unlink(fifo.c_str());
    ASSERT_FALSE(table);
    EXPECT_NE(table.error().find("is a FIFO"), std::string::npos) << table.error();
}

TEST(Aphorisms, LongLinesAndLongDuplicatesAreNamedInAReadableLine) {
    const std::string question = std::string(10'000, 'q') + "?";
    auto table = AphorismTable::parse(question + " A.\n" + question + " B.\n");
    ASSERT_FALSE(table);
    EXPECT_LT(table.error().size(), 200u) << "the duplicate is quoted whole";
    EXPECT_EQ(table.error().rfind("line 2: duplicate question \"qqq", 0), 0u) << table.error();
    table = AphorismTable::parse("Short? A.\n" + std::string(max_aphorism_line + 1, 'x') + "? B.\n");
    ASSERT_FALSE(table);
    EXPECT_EQ(table.error(), "line 2: longer than 65536 bytes");
}

}  // namespace
}  // namespace zen
