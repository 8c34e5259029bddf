#include "proto/framing.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>

namespace zen {

bool EofFramer::feed(std::string_view data) {
    if (too_large_) return false;
    if (data.size() > max_message_ - message_.size()) {
        too_large_ = true;
        return false;
    }
    message_.append(data);
    return true;
}

DelimiterFramer::DelimiterFramer(std::string delimiter, std::size_t max_message)
    : delimiter_(std::move(delimiter)), max_message_(max_message) {}

void DelimiterFramer::feed(std::string_view data) {
    if (too_large_) return;
    if (start_ > 0 && start_ == buffer_.size()) {
        buffer_.clear();
        start_ = 0;
    }
    buffer_.append(data);
}

std::optional<std::string> DelimiterFramer::next() {
    if (too_large_ || delimiter_.empty()) return std::nullopt;
    const std::string_view rest = remainder();
    // Resume the search where the last one stopped, less a partial delimiter it may have cut.
    const std::size_t from = scanned_ > delimiter_.size() ? scanned_ - (delimiter_.size() - 1) : 0;
    const std::size_t at = rest.find(delimiter_, from);
    if (at == std::string_view::npos) {
        scanned_ = rest.size();
        if (rest.size() > max_message_ + delimiter_.size() - 1) too_large_ = true;
        return std::nullopt;
    }
    if (at > max_message_) {
        too_large_ = true;
        return std::nullopt;
    }
    std::string message(rest.substr(0, at));
    start_ += at + delimiter_.size();
    scanned_ = 0;
    if (start_ >= 64 * 1024 && start_ * 2 >= buffer_.size()) {
        buffer_.erase(0, start_);
        start_ = 0;
    }
    return message;
}

void BlockDecoder::feed(std::string_view data) {
    if (finished_) return;
    if (pending_start_ == pending_.size()) {
        pending_.clear();
        pending_start_ = 0;
    }
    pending_.append(data);
}

BlockDecoder::Event BlockDecoder::next() {
    if (finished_) return final_;
    std::string_view available = std::string_view(pending_).substr(pending_start_);
    if (!have_header_) {
        if (available.size() < 4) return Event::need_data;
        std::uint32_t network = 0;
        std::memcpy(&network, available.data(), 4);
        announced_ = ntohl(network);
        pending_start_ += 4;
        available.remove_prefix(4);
        if (announced_ == 0) {
            finished_ = true;
            final_ = Event::end;
            return final_;
        }
        if (announced_ > max_block_) {
            finished_ = true;
            final_ = Event::too_large;
            pending_.clear();
            pending_start_ = 0;
            return final_;
        }
        have_header_ = true;
        block_.clear();
    }
    const std::size_t take = std::min<std::size_t>(announced_ - block_.size(), available.size());
    if (block_.size() + take > block_.capacity()) {
        // Room grows with the bytes that came, not with what the header announced (a 2 GiB
        // announcement would otherwise take 2 GiB before a byte of it arrived): doubling, never
        // past the announced size. A fresh string each time, since reserve() on the old one may
        // double its capacity past max_block.
        const std::size_t room = std::min<std::size_t>(
            announced_, std::max({block_.size() + take, 2 * block_.capacity(), std::size_t{64 * 1024}}));
        std::string grown;
        grown.reserve(room);  // throws std::bad_alloc when the memory is not there
        grown.append(block_);
        block_.swap(grown);
    }
    block_.append(available.substr(0, take));
    pending_start_ += take;
    if (block_.size() < announced_) return Event::need_data;
    have_header_ = false;
    return Event::block;
}

std::size_t BlockDecoder::missing() const {
    if (have_header_) return announced_ - block_.size();
    return 4 - std::min<std::size_t>(4, pending_.size() - pending_start_);
}

bool BlockDecoder::in_block() const { return have_header_ || pending_.size() > pending_start_; }

std::string encode_block_header(std::uint32_t length) {
    const std::uint32_t network = htonl(length);
    return std::string(reinterpret_cast<const char*>(&network), 4);
}

std::string encode_block(std::string_view payload) {
    std::string bytes = encode_block_header(static_cast<std::uint32_t>(payload.size()));
    bytes.append(payload);
    return bytes;
}

}  // namespace zen
