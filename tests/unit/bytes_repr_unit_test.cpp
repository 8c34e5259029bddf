// Expected strings were checked against python3's repr() of the same bytes.
#include <gtest/gtest.h>

#include "proto/bytes_repr.hpp"

namespace zen {
namespace {

TEST(BytesRepr, PlainText) {
    EXPECT_EQ(bytes_repr("Ugly."), "b'Ugly.'");
    EXPECT_EQ(bytes_repr(""), "b''");
}

TEST(BytesRepr, QuotesChooseLikePython) {
    EXPECT_EQ(bytes_repr("it's"), "b\"it's\"");
    EXPECT_EQ(bytes_repr("say \"hi\""), "b'say \"hi\"'");
    EXPECT_EQ(bytes_repr("it's \"x\""), "b'it\\'s \"x\"'");
}

TEST(BytesRepr, EscapesLikePython) {
    EXPECT_EQ(bytes_repr("a\\b"), "b'a\\\\b'");
    EXPECT_EQ(bytes_repr("\t\n\r"), "b'\\t\\n\\r'");
    EXPECT_EQ(bytes_repr(std::string("\0\x01\x1f\x7f\x80\xff", 6)), "b'\\x00\\x01\\x1f\\x7f\\x80\\xff'");
    EXPECT_EQ(bytes_repr(" ~"), "b' ~'");
}

TEST(BytesRepr, LongBytesAreCutAndMarked) {
    EXPECT_EQ(bytes_repr(std::string(10, 'x'), 4), "b'xxxx'... (10 bytes)");
    EXPECT_EQ(bytes_repr(std::string(4, 'x'), 4), "b'xxxx'");
    EXPECT_EQ(bytes_repr(std::string(300, 'y')).size(), std::string("b''... (300 bytes)").size() + 200);
}

}  // namespace
}  // namespace zen
