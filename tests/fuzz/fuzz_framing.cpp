// libFuzzer target: chapter 5's codecs. Decoding the same bytes whole and in pieces must give
// the same blocks and the same end; no announced length may cause an allocation past the limit.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "proto/framing.hpp"

namespace {

void check(bool condition) {
    if (!condition) std::abort();
}

struct Decoded {
    std::vector<std::string> blocks;
    zen::BlockDecoder::Event last = zen::BlockDecoder::Event::need_data;
};

Decoded decode_blocks(std::string_view stream, std::size_t piece, std::size_t max_block) {
    zen::BlockDecoder decoder(max_block);
    Decoded decoded;
    while (true) {
        const std::size_t n = std::min(piece, stream.size());
        decoder.feed(stream.substr(0, n));
        stream.remove_prefix(n);
        for (;;) {
            decoded.last = decoder.next();
            if (decoded.last != zen::BlockDecoder::Event::block) break;
            check(decoder.block().size() <= max_block);
            decoded.blocks.push_back(decoder.block());
        }
        check(decoder.block().capacity() <= std::max<std::size_t>(max_block, 64));
        if (stream.empty() || decoded.last != zen::BlockDecoder::Event::need_data) return decoded;
    }
}

std::vector<std::string> split_lines(std::string_view stream, std::size_t piece, bool& too_large) {
    zen::DelimiterFramer framer("\r\n", 64);
    std::vector<std::string> messages;
    while (!stream.empty()) {
        const std::size_t n = std::min(piece, stream.size());
        framer.feed(stream.substr(0, n));
        stream.remove_prefix(n);
        while (auto message = framer.next()) messages.push_back(*message);
    }
    too_large = framer.too_large();
    return messages;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return 0;
    const std::size_t piece = 1 + data[0] % 13;
    const std::size_t max_block = 1 + data[1] * 16;
    const std::string_view stream(reinterpret_cast<const char*>(data) + 2, size - 2);

    const Decoded whole = decode_blocks(stream, SIZE_MAX, max_block);
    const Decoded pieces = decode_blocks(stream, piece, max_block);
    check(whole.blocks == pieces.blocks);
    check(whole.last == pieces.last);

    bool whole_too_large = false;
    bool pieces_too_large = false;
    const auto lines_whole = split_lines(stream, SIZE_MAX, whole_too_large);
    const auto lines_pieces = split_lines(stream, piece, pieces_too_large);
    if (!whole_too_large && !pieces_too_large) check(lines_whole == lines_pieces);
    for (const std::string& line : lines_pieces) check(line.size() <= 64);
    return 0;
}
