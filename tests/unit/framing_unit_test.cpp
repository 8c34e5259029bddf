// Chapter 5's framing codecs fed bytes in memory: whole, one byte at a time, split everywhere.
#include <gtest/gtest.h>

#include <vector>

#include "proto/framing.hpp"

namespace zen {
namespace {

std::vector<std::string> drain_blocks(BlockDecoder& decoder, bool& ended) {
    std::vector<std::string> blocks;
    for (;;) {
        const auto event = decoder.next();
        if (event == BlockDecoder::Event::block) {
            blocks.push_back(decoder.block());
            continue;
        }
        ended = event == BlockDecoder::Event::end;
        return blocks;
    }
}

std::string book_stream() {
    return encode_block("Beautiful is better than ugly.") + encode_block("Explicit is better than implicit.") +
           encode_block("Simple is better than complex.") + encode_block_header(0);
}

const std::vector<std::string> book_blocks = {"Beautiful is better than ugly.", "Explicit is better than implicit.",
                                              "Simple is better than complex."};

TEST(Blocks, HeaderIsFourBytesBigEndian) {
    EXPECT_EQ(encode_block_header(0x01020304), std::string("\x01\x02\x03\x04", 4));
    EXPECT_EQ(encode_block("ab"), std::string("\0\0\0\x02" "ab", 6));
    EXPECT_EQ(encode_block_header(0), std::string(4, '\0'));
}

TEST(Blocks, WholeStream) {
    BlockDecoder decoder;
    decoder.feed(book_stream());
    bool ended = false;
    EXPECT_EQ(drain_blocks(decoder, ended), book_blocks);
    EXPECT_TRUE(ended);
}

TEST(Blocks, OneByteAtATime) {
    BlockDecoder decoder;
    std::vector<std::string> blocks;
    bool ended = false;
    for (const char c : book_stream()) {
        decoder.feed(std::string_view(&c, 1));
        for (auto& block : drain_blocks(decoder, ended)) blocks.push_back(block);
    }
    EXPECT_EQ(blocks, book_blocks);
    EXPECT_TRUE(ended);
}

TEST(Blocks, EverySplitIntoTwo) {
    const std::string stream = book_stream();
    for (std::size_t i = 0; i <= stream.size(); ++i) {
        BlockDecoder decoder;
        bool ended = false;
        decoder.feed(stream.substr(0, i));
        auto blocks = drain_blocks(decoder, ended);
        decoder.feed(stream.substr(i));
        for (auto& block : drain_blocks(decoder, ended)) blocks.push_back(block);
        EXPECT_EQ(blocks, book_blocks) << "split at " << i;
        EXPECT_TRUE(ended) << "split at " << i;
    }
}

TEST(Blocks, BinaryPayloadWithNulBytes) {
    const std::string payload("\0\xff\0?\n", 5);
    BlockDecoder decoder;
    decoder.feed(encode_block(payload) + encode_block_header(0));
    bool ended = false;
    EXPECT_EQ(drain_blocks(decoder, ended), std::vector<std::string>{payload});
    EXPECT_TRUE(ended);
}

TEST(Blocks, AnnouncedFourGibibytesIsRefusedBeforeAnyAllocation) {
    BlockDecoder decoder;  // default limit 16 MiB
    decoder.feed(std::string("\xff\xff\xff\xff", 4));
    EXPECT_EQ(decoder.next(), BlockDecoder::Event::too_large);
    EXPECT_EQ(decoder.announced(), 0xffffffffu);
    EXPECT_LT(decoder.block().capacity(), 1024u);
    decoder.feed("more");  // ignored: too_large is final
    EXPECT_EQ(decoder.next(), BlockDecoder::Event::too_large);
}

TEST(Blocks, GrowingBlocksNeverHoldMoreThanTheLimit) {
    // Found by fuzz_framing: reserving a larger block on the old string doubled its capacity,
    // past --max-block (30 bytes, then 40, under a 49-byte limit, held 60).
    BlockDecoder decoder(49);
    decoder.feed(encode_block(std::string(30, 'a')) + encode_block(std::string(40, 'b')) +
                 encode_block(std::string(49, 'c')));
    for (std::size_t size : {30u, 40u, 49u}) {
        ASSERT_EQ(decoder.next(), BlockDecoder::Event::block);
        EXPECT_EQ(decoder.block().size(), size);
        EXPECT_LE(decoder.block().capacity(), 49u);
    }
}

TEST(Blocks, MemoryGrowsWithTheBytesReceivedNotWithTheAnnouncement) {
    // A 2 GiB block announced under a 4 GiB limit: nothing near that is taken for its first bytes.
    BlockDecoder decoder(0xffffffffu);
    decoder.feed(encode_block_header(0x80000000u) + std::string(1000, 'x'));
    EXPECT_EQ(decoder.next(), BlockDecoder::Event::need_data);
    EXPECT_LE(decoder.block().capacity(), 64u * 1024);
    decoder.feed(std::string(200'000, 'y'));
    EXPECT_EQ(decoder.next(), BlockDecoder::Event::need_data);
    EXPECT_LE(decoder.block().capacity(), 512u * 1024);
    EXPECT_EQ(decoder.missing(), 0x80000000u - 201'000);
}

TEST(Blocks, LimitIsInclusive) {
    BlockDecoder decoder(5);
    decoder.feed(encode_block("12345") + encode_block("123456"));
    EXPECT_EQ(decoder.next(), BlockDecoder::Event::block);
    EXPECT_EQ(decoder.block(), "12345");
    EXPECT_EQ(decoder.next(), BlockDecoder::Event::too_large);
}

TEST(Blocks, MissingAndInBlockForEofMidBlock) {
    BlockDecoder decoder;
    EXPECT_FALSE(decoder.in_block());
    decoder.feed(std::string("\0\0", 2));
    EXPECT_EQ(decoder.next(), BlockDecoder::Event::need_data);
    EXPECT_TRUE(decoder.in_block());
    EXPECT_EQ(decoder.missing(), 2u);
    decoder.feed(std::string("\0\x0a" "abc", 5));
    EXPECT_EQ(decoder.next(), BlockDecoder::Event::need_data);
    EXPECT_EQ(decoder.missing(), 7u);
}

TEST(EofFraming, CollectsEverythingUpToTheLimit) {
    EofFramer framer(10);
    EXPECT_TRUE(framer.feed("hello "));
    EXPECT_TRUE(framer.feed("word"));
    EXPECT_EQ(framer.message(), "hello word");
    EXPECT_FALSE(framer.feed("!"));
    EXPECT_TRUE(framer.too_large());
    EXPECT_EQ(framer.message(), "hello word");
}

TEST(DelimiterFraming, KeepsTheBytesAfterTheDelimiter) {
    DelimiterFramer framer("\r\n");
    framer.feed("one\r\ntwo\r\nthr");
    EXPECT_EQ(framer.next(), "one");
    EXPECT_EQ(framer.next(), "two");
    EXPECT_EQ(framer.next(), std::nullopt);
    EXPECT_EQ(framer.remainder(), "thr");
    framer.feed("ee\r\n");
    EXPECT_EQ(framer.next(), "three");
    EXPECT_EQ(framer.remainder(), "");
}

TEST(DelimiterFraming, EverySplitOfAMultiByteDelimiterStream) {
    const std::string stream = "alpha\r\n\r\nbeta\r\ngamma\r\n";
    const std::vector<std::string> expected = {"alpha", "", "beta", "gamma"};
    for (std::size_t i = 0; i <= stream.size(); ++i) {
        for (std::size_t j = i; j <= stream.size(); ++j) {
            DelimiterFramer framer("\r\n");
            std::vector<std::string> got;
            for (const std::string& piece : {stream.substr(0, i), stream.substr(i, j - i), stream.substr(j)}) {
                framer.feed(piece);
                while (auto message = framer.next()) got.push_back(*message);
            }
            EXPECT_EQ(got, expected) << "splits at " << i << ", " << j;
            EXPECT_EQ(framer.remainder(), "");
        }
    }
}

TEST(DelimiterFraming, TooLongWithoutDelimiter) {
    DelimiterFramer framer("\n", 8);
    framer.feed("12345678");
    EXPECT_EQ(framer.next(), std::nullopt);
    EXPECT_FALSE(framer.too_large());
    framer.feed("9");
    EXPECT_EQ(framer.next(), std::nullopt);
    EXPECT_TRUE(framer.too_large());
}

}  // namespace
}  // namespace zen
