// Chapter 5's framing codecs (src/proto/framing.hpp): length-prefixed blocks (blocks.py),
// delimiter framing and EOF framing (streamer.py), fed whole, split in two and one byte at a
// time. The argument is the message size in bytes; 30 is the book's "Beautiful is better than
// ugly.". Time and `per_item` are per message.
#include <algorithm>
#include <string>
#include <string_view>

#include "micro.hpp"
#include "proto/framing.hpp"

namespace zen {
namespace {

// size bytes of the book's text, repeated.
std::string message_of(std::int64_t size) {
    constexpr std::string_view text = "Beautiful is better than ugly.";
    std::string message;
    while (message.size() < static_cast<std::size_t>(size)) message.append(text);
    message.resize(static_cast<std::size_t>(size));
    return message;
}

void count_messages(benchmark::State& state, std::size_t bytes_per_message) {
    state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(bytes_per_message));
    micro::count_items(state, 1);
}

// --- Length-prefixed blocks ---

void blocks_encode(benchmark::State& state) {
    const std::string payload = message_of(state.range(0));
    {
        BlockDecoder decoder;
        decoder.feed(encode_block(payload));
        if (decoder.next() != BlockDecoder::Event::block || decoder.block() != payload || decoder.in_block()) {
            micro::fail(state, "encode_block() does not decode back to its payload");
            return;
        }
    }
    const micro::AllocationCount allocations;
    for (auto _ : state) {
        std::string encoded = encode_block(payload);
        benchmark::DoNotOptimize(encoded);
    }
    allocations.report(state);
    count_messages(state, payload.size());
}
BENCHMARK(blocks_encode)->Arg(30)->Arg(1024)->Arg(64 * 1024);

// Feeds the pieces in order, asking for blocks after each as blocks.cpp does; returns how many
// whole blocks came out, the last of them in decoder.block().
int decode_pieces(BlockDecoder& decoder, std::string_view stream, std::size_t piece) {
    int blocks = 0;
    while (!stream.empty()) {
        const std::size_t n = std::min(piece, stream.size());
        decoder.feed(stream.substr(0, n));
        stream.remove_prefix(n);
        for (BlockDecoder::Event event = decoder.next(); event != BlockDecoder::Event::need_data;
             event = decoder.next()) {
            if (event != BlockDecoder::Event::block) return -1;
            ++blocks;
        }
    }
    return blocks;
}

// One decoder across iterations, as one connection carries many blocks. The piece size is
// 0 for the whole block in one read, else how many bytes each read brings.
void blocks_decode(benchmark::State& state, std::size_t piece_or_whole) {
    const std::string payload = message_of(state.range(0));
    const std::string stream = encode_block(payload);
    const std::size_t piece = piece_or_whole == 0 ? stream.size() : piece_or_whole;
    BlockDecoder decoder;
    if (decode_pieces(decoder, stream, piece) != 1 || decoder.block() != payload || decoder.in_block()) {
        micro::fail(state, "the decoder did not give back the one block it was fed");
        return;
    }
    const micro::AllocationCount allocations;
    for (auto _ : state) {
        int blocks = decode_pieces(decoder, stream, piece);
        benchmark::DoNotOptimize(blocks);
        benchmark::DoNotOptimize(decoder.block().data());
    }
    allocations.report(state);
    if (decoder.block() != payload) {
        micro::fail(state, "the last block decoded in the timed loop is wrong");
        return;
    }
    count_messages(state, payload.size());
}

void blocks_decode_whole(benchmark::State& state) { blocks_decode(state, 0); }
BENCHMARK(blocks_decode_whole)->Arg(30)->Arg(1024)->Arg(64 * 1024);

// Two reads: the header and half the payload, then the rest.
void blocks_decode_split(benchmark::State& state) {
    blocks_decode(state, (static_cast<std::size_t>(state.range(0)) + 4 + 1) / 2);
}
BENCHMARK(blocks_decode_split)->Arg(30)->Arg(1024)->Arg(64 * 1024);

void blocks_decode_byte_by_byte(benchmark::State& state) { blocks_decode(state, 1); }
BENCHMARK(blocks_decode_byte_by_byte)->Arg(30)->Arg(1024);

// blocks.py's whole conversation with a new decoder: the book's three blocks and the
// zero-length block, in one read. Time and `per_item` are per block.
void blocks_decode_book_stream(benchmark::State& state) {
    const std::string stream = encode_block("Beautiful is better than ugly.") +
                               encode_block("Explicit is better than implicit.") +
                               encode_block("Simple is better than complex.") + encode_block_header(0);
    auto decode = [&stream] {
        BlockDecoder decoder;
        decoder.feed(stream);
        int blocks = 0;
        BlockDecoder::Event event;
        while ((event = decoder.next()) == BlockDecoder::Event::block) ++blocks;
        return event == BlockDecoder::Event::end ? blocks : -1;
    };
    if (decode() != 3) {
        micro::fail(state, "the book's stream did not decode to three blocks and the end");
        return;
    }
    const micro::AllocationCount allocations;
    for (auto _ : state) {
        int blocks = decode();
        benchmark::DoNotOptimize(blocks);
    }
    allocations.report(state);
    micro::count_items(state, 3);
}
BENCHMARK(blocks_decode_book_stream);

// --- Delimiter framing ("\r\n"; the message is what comes before it) ---

int split_messages(DelimiterFramer& framer, std::string_view stream, std::size_t piece, std::string& last) {
    int messages = 0;
    while (!stream.empty()) {
        const std::size_t n = std::min(piece, stream.size());
        framer.feed(stream.substr(0, n));
        stream.remove_prefix(n);
        while (auto message = framer.next()) {
            last = std::move(*message);
            ++messages;
        }
    }
    return messages;
}

void delimiter_decode(benchmark::State& state, std::size_t piece_or_whole) {
    const std::string message = message_of(state.range(0));
    const std::string stream = message + "\r\n";
    const std::size_t piece = piece_or_whole == 0 ? stream.size() : piece_or_whole;
    DelimiterFramer framer("\r\n");
    std::string last;
    if (split_messages(framer, stream, piece, last) != 1 || last != message || !framer.remainder().empty()) {
        micro::fail(state, "the framer did not give back the one message it was fed");
        return;
    }
    const micro::AllocationCount allocations;
    for (auto _ : state) {
        int messages = split_messages(framer, stream, piece, last);
        benchmark::DoNotOptimize(messages);
        benchmark::DoNotOptimize(last.data());
    }
    allocations.report(state);
    if (last != message || framer.too_large()) {
        micro::fail(state, "the last message split in the timed loop is wrong");
        return;
    }
    count_messages(state, message.size());
}

void delimiter_decode_whole(benchmark::State& state) { delimiter_decode(state, 0); }
BENCHMARK(delimiter_decode_whole)->Arg(30)->Arg(1024)->Arg(64 * 1024);

// Two reads that cut the delimiter: the message and "\r", then "\n".
void delimiter_decode_split(benchmark::State& state) {
    delimiter_decode(state, static_cast<std::size_t>(state.range(0)) + 1);
}
BENCHMARK(delimiter_decode_split)->Arg(30)->Arg(1024)->Arg(64 * 1024);

void delimiter_decode_byte_by_byte(benchmark::State& state) { delimiter_decode(state, 1); }
BENCHMARK(delimiter_decode_byte_by_byte)->Arg(30)->Arg(1024);

// --- EOF framing: streamer.py's whole message, read 8 KiB at a time as streamer.cpp does ---

void eof_framer_message(benchmark::State& state) {
    const std::string message = message_of(state.range(0));
    constexpr std::size_t read_size = 8192;
    auto frame = [&message] {
        EofFramer framer;
        for (std::size_t at = 0; at < message.size(); at += read_size)
            framer.feed(std::string_view(message).substr(at, read_size));
        return framer;
    };
    if (const EofFramer framer = frame(); framer.too_large() || framer.message() != message) {
        micro::fail(state, "the EOF framer did not keep the whole message");
        return;
    }
    const micro::AllocationCount allocations;
    for (auto _ : state) {
        EofFramer framer = frame();
        benchmark::DoNotOptimize(framer);
    }
    allocations.report(state);
    count_messages(state, message.size());
}
BENCHMARK(eof_framer_message)->Arg(96)->Arg(64 * 1024);

}  // namespace
}  // namespace zen
