#include "loop/chat.hpp"

namespace zen::loop {

void AsyncChat::data_received(std::string_view data) {
    if (held_.empty()) {
        split(data);
        return;
    }
    // The tail of the last read could have begun a terminator: it is looked at again with what
    // follows, so a terminator that overlaps itself ("aab" after "aa") is found across reads too.
    std::string joined = std::move(held_);
    held_.clear();
    joined.append(data);
    split(joined);
}

void AsyncChat::split(std::string_view data) {
    while (!data.empty() && !transport_->closed()) {
        if (terminator_.empty()) {
            collect_incoming_data(data);
            return;
        }
        const std::size_t at = data.find(terminator_);
        if (at != std::string_view::npos) {
            if (at > 0) collect_incoming_data(data.substr(0, at));
            data.remove_prefix(at + terminator_.size());
            found_terminator();  // may change the terminator: the loop reads it afresh
            continue;
        }
        // Keep back the longest tail that could be the start of a terminator.
        std::size_t keep = std::min(terminator_.size() - 1, data.size());
        while (keep > 0 && data.substr(data.size() - keep) != std::string_view(terminator_).substr(0, keep)) --keep;
        if (data.size() > keep) collect_incoming_data(data.substr(0, data.size() - keep));
        held_.assign(data.substr(data.size() - keep));
        return;
    }
}

}  // namespace zen::loop
