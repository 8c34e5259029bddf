#include "proto/session.hpp"

#include <algorithm>
#include <cstring>

namespace zen {

namespace {

bool is_leading_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// How many bytes of whitespace open data: what the protocol skips before a question.
std::size_t leading_space(std::string_view data) {
    std::size_t skip = 0;
    while (skip < data.size() && is_leading_space(data[skip])) ++skip;
    return skip;
}

}  // namespace

Session::Session(const AphorismTable& table, SessionLimits limits)
    : table_(&table), limits_(limits) {}

Session::Session(const LiveTable& live, SessionLimits limits)
    : live_(&live), generation_(live.generation()), limits_(limits) {
    held_ = live.current();
    table_ = held_.get();
}

std::size_t Session::answer_questions(std::string_view data) {
    const std::size_t total = data.size();
    while (!output_full()) {
        if (const std::size_t skip = leading_space(data); skip > 0) {
            data.remove_prefix(skip);
            scanned_ = 0;
        }
        if (data.empty()) break;

        const std::size_t window = std::min(data.size(), limits_.max_question);
        const std::size_t from = std::min(scanned_, window);
        const void* mark = std::memchr(data.data() + from, '?', window - from);
        if (mark == nullptr) {
            if (too_long(data.size())) {
                refuse_too_long();
                return total;
            }
            scanned_ = data.size();
            break;
        }
        const std::size_t length = static_cast<const char*>(mark) - data.data() + 1;
        if (live_ != nullptr && live_->generation() != generation_) {
            generation_ = live_->generation();  // first: a publish after it is seen next time
            held_ = live_->current();
            table_ = held_.get();
        }
        output_.append(table_->answer(data.substr(0, length)));
        ++answered_;
        data.remove_prefix(length);
        scanned_ = 0;
    }
    return total - data.size();
}

void Session::process_buffered_input() {
    const std::size_t used = answer_questions(input_);
    if (status_ == Status::too_long) {
        input_.clear();
        return;
    }
    input_.erase(0, used);
}

void Session::receive(std::string_view data) {
    if (status_ != Status::open || eof_ || data.empty()) return;
    if (input_.empty()) {
        // Fast path: answer straight from the caller's buffer and keep only the remainder.
        const std::size_t used = answer_questions(data);
        if (status_ == Status::open) input_.assign(data.substr(used));
    } else {
        input_.append(data);
        process_buffered_input();
    }
}

void Session::receive_unframed(std::string_view data) {
    if (status_ != Status::open || eof_ || data.empty()) return;
    // Only a partial question with nothing held back before it can take the bytes unscanned.
    if (output_full() || scanned_ != input_.size()) {
        receive(data);
        return;
    }
    if (input_.empty()) {
        data.remove_prefix(leading_space(data));
        if (data.empty()) return;
    }
    input_.append(data);
    scanned_ = input_.size();
    if (too_long(input_.size())) {
        input_.clear();
        scanned_ = 0;
        refuse_too_long();
    }
}

void Session::refuse_too_long() {
    output_.append(question_too_long_answer);
    status_ = Status::too_long;
}

void Session::receive_eof() {
    if (eof_) return;
    eof_ = true;
    settle_at_eof();
}

void Session::settle_at_eof() {
    if (!eof_ || status_ != Status::open || output_full()) return;
    process_buffered_input();
    if (status_ != Status::open || output_full()) return;
    status_ = input_.empty() ? Status::finished : Status::partial_at_eof;
}

void Session::consume_output(std::size_t n) {
    output_sent_ += std::min(n, output_.size() - output_sent_);
    if (output_sent_ == output_.size()) {
        output_.clear();
        output_sent_ = 0;
    } else if (output_sent_ >= 4096 && output_sent_ * 2 >= output_.size()) {
        output_.erase(0, output_sent_);
        output_sent_ = 0;
    }
    if (status_ != Status::open || output_full()) return;
    if (eof_) {
        settle_at_eof();
    } else if (!input_.empty()) {
        process_buffered_input();
    }
}

}  // namespace zen
