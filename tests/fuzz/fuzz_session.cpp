// libFuzzer target: the Zen session. The input's first bytes choose the limits and how the rest
// is cut into reads; the same bytes fed whole, fed in pieces, and fed framed as an asynchat
// channel frames them (pieces without '?' through receive_unframed, each '?' on its own), with
// the output taken in odd amounts, must give the same answers and the same end, and the pending
// output must stay within its bound.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "proto/session.hpp"

namespace {

const zen::AphorismTable& table() {
    static const zen::AphorismTable book = zen::AphorismTable::book_defaults();
    return book;
}

void check(bool condition) {
    if (!condition) std::abort();
}

struct Run {
    std::string output;
    zen::Session::Status status;
    std::string unanswered;
};

// Feeds one read as the caller chose: whole, or split at every '?' as chat's framing does.
void feed(zen::Session& session, std::string_view read, bool framed) {
    if (!framed) {
        session.receive(read);
        return;
    }
    while (!read.empty()) {
        const std::size_t mark = read.find('?');
        if (mark == std::string_view::npos) {
            session.receive_unframed(read);
            return;
        }
        if (mark > 0) session.receive_unframed(read.substr(0, mark));
        session.receive(read.substr(mark, 1));
        read.remove_prefix(mark + 1);
    }
}

Run converse(std::string_view stream, zen::SessionLimits limits, std::string_view cuts, std::size_t take,
             bool framed = false) {
    zen::Session session(table(), limits);
    Run run;
    std::size_t cut = 0;
    const auto drain = [&](bool all) {
        while (!session.pending_output().empty()) {
            check(session.pending_output().size() <= limits.max_pending + 32);
            const std::size_t n = all ? session.pending_output().size() : std::min(take, session.pending_output().size());
            run.output.append(session.pending_output().substr(0, n));
            session.consume_output(n);
            if (!all && session.wants_input()) break;
        }
    };
    while (!stream.empty() && session.status() == zen::Session::Status::open) {
        const std::size_t size = cuts.empty() ? stream.size() : 1 + static_cast<unsigned char>(cuts[cut++ % cuts.size()]);
        feed(session, stream.substr(0, size), framed);
        stream.remove_prefix(std::min(size, stream.size()));
        drain(false);
        while (!session.wants_input() && !session.pending_output().empty()) drain(false);
    }
    session.receive_eof();
    for (int guard = 0; guard < 1'000'000 && !session.done(); ++guard) drain(true);
    check(session.done());
    run.status = session.status();
    run.unanswered = std::string(session.unanswered_bytes());
    return run;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 4) return 0;
    zen::SessionLimits limits;
    limits.max_question = 25 + data[0] % 64;  // every book question still fits
    limits.max_pending = 1 + data[1] * 4;
    const std::size_t take = 1 + data[2] % 16;
    const std::size_t cut_count = data[3] % 8;
    if (size < 4 + cut_count) return 0;
    const std::string_view cuts(reinterpret_cast<const char*>(data) + 4, cut_count);
    const std::string_view stream(reinterpret_cast<const char*>(data) + 4 + cut_count, size - 4 - cut_count);

    zen::SessionLimits roomy = limits;
    roomy.max_pending = std::size_t{1} << 30;
    const Run whole = converse(stream, roomy, {}, SIZE_MAX);
    const Run pieces = converse(stream, limits, cuts, take);
    check(whole.output == pieces.output);
    check(whole.status == pieces.status);
    check(whole.unanswered == pieces.unanswered);
    const Run framed = converse(stream, limits, cuts, take, true);
    check(whole.output == framed.output);
    check(whole.status == framed.status);
    check(whole.unanswered == framed.unanswered);
    return 0;
}
