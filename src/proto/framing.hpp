// Chapter 5's ways to find where a message ends on a stream, as sans-I/O codecs: fed bytes,
// they hand back whole messages. No sockets here; src/commands/streamer.cpp and blocks.cpp move the
// bytes.
//
//   EOF framing        — the message is everything up to end of file (streamer.py).
//   delimiter framing  — messages end with a delimiter; bytes after it start the next one.
//   length-prefixed    — a 4-byte big-endian length, then that many bytes; a zero-length block
//                        ends the stream (blocks.py).
//
// Every codec has a size limit, checked before anything is allocated for a message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace zen {

inline constexpr std::size_t default_max_block = 16 * 1024 * 1024;

// The whole stream is one message.
class EofFramer {
public:
    explicit EofFramer(std::size_t max_message = default_max_block) : max_message_(max_message) {}

    // False once the message has grown past max_message (the excess is not kept).
    bool feed(std::string_view data);
    bool too_large() const { return too_large_; }
    // At end of file: the message.
    const std::string& message() const { return message_; }

private:
    std::size_t max_message_;
    std::string message_;
    bool too_large_ = false;
};

// Messages that end with a delimiter (the delimiter is not part of the message).
class DelimiterFramer {
public:
    explicit DelimiterFramer(std::string delimiter, std::size_t max_message = default_max_block);

    void feed(std::string_view data);
    // The next whole message, if one has arrived.
    std::optional<std::string> next();
    // A message grew past max_message without its delimiter.
    bool too_large() const { return too_large_; }
    // Bytes after the last delimiter: the start of a message not yet complete.
    std::string_view remainder() const { return std::string_view(buffer_).substr(start_); }

private:
    std::string delimiter_;
    std::size_t max_message_;
    std::string buffer_;
    std::size_t start_ = 0;    // where the next message begins in buffer_
    std::size_t scanned_ = 0;  // bytes from start_ known to hold no whole delimiter
    bool too_large_ = false;
};

// Length-prefixed blocks: header "!I" (4 bytes, network order), then the payload.
class BlockDecoder {
public:
    enum class Event {
        need_data,  // feed more bytes
        block,      // block() holds a whole block
        end,        // the zero-length block: the sender is done
        too_large,  // a header announced more than max_block; nothing was allocated for it
        // (a block's memory grows with the bytes received; std::bad_alloc if it cannot)
    };

    explicit BlockDecoder(std::size_t max_block = default_max_block) : max_block_(max_block) {}

    void feed(std::string_view data);
    // Call until it says need_data (or end / too_large, which are final).
    Event next();
    const std::string& block() const { return block_; }
    std::uint32_t announced() const { return announced_; }
    // Bytes of the current block still missing (for "closed with N bytes left" at EOF).
    std::size_t missing() const;
    // Something has been received of a block (header or payload) that is not complete.
    bool in_block() const;

private:
    std::size_t max_block_;
    std::string pending_;        // received, not yet decoded
    std::size_t pending_start_ = 0;
    std::string block_;
    std::uint32_t announced_ = 0;
    bool have_header_ = false;
    bool finished_ = false;      // end or too_large seen
    Event final_ = Event::need_data;
};

// The bytes that send one block: its header, then the payload.
std::string encode_block(std::string_view payload);
// The 4-byte header alone (a zero-length block ends the stream).
std::string encode_block_header(std::uint32_t length);

}  // namespace zen
