#include "loop/chat.hpp"

namespace zen::loop {

void AsyncChat::data_received(std::string_view data) {
    // A terminator may straddle two reads: matched_ counts how much of it ended the last one.
    while (!data.empty() && !transport_->closed()) {
        if (terminator_.empty()) {
            collect_incoming_data(data);
            return;
        }
        if (matched_ > 0) {
            const std::size_t more = std::min(terminator_.size() - matched_, data.size());
            if (data.substr(0, more) == std::string_view(terminator_).substr(matched_, more)) {
                matched_ += more;
                data.remove_prefix(more);
                if (matched_ == terminator_.size()) {
                    matched_ = 0;
                    found_terminator();
                }
                continue;
            }
            // Not a terminator after all: those bytes were data.
            collect_incoming_data(std::string_view(terminator_).substr(0, matched_));
            matched_ = 0;
        }
        const std::size_t at = data.find(terminator_);
        if (at != std::string_view::npos) {
            if (at > 0) collect_incoming_data(data.substr(0, at));
            data.remove_prefix(at + terminator_.size());
            found_terminator();
            continue;
        }
        // Keep back a tail that could be the start of a terminator.
        std::size_t keep = std::min(terminator_.size() - 1, data.size());
        while (keep > 0 && data.substr(data.size() - keep) != std::string_view(terminator_).substr(0, keep)) --keep;
        if (data.size() > keep) collect_incoming_data(data.substr(0, data.size() - keep));
        matched_ = keep;
        return;
    }
}

}  // namespace zen::loop
