// The Zen session (src/proto/session.hpp) driven the way the servers drive it: each read goes to
// receive(), then the answers are taken out as a driver sends Connection::output() (pending_output()
// to send(), consume_output() of what was sent). One session lives across iterations, like a
// long connection; the time and `per_item` are per question.
#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "micro.hpp"
#include "proto/session.hpp"

namespace zen {
namespace {

const AphorismTable& book_table() {
    static const AphorismTable table = AphorismTable::book_defaults();
    return table;
}

// What a client sends, one string per read the server makes, and every answer it must get.
struct Script {
    std::vector<std::string> reads;
    std::string answers;
    std::int64_t questions = 0;
};

Script whole_question() { return {{"Beautiful is better than?"}, "Ugly.", 1}; }

// The book's three questions in turn, all in one read.
Script pipelined(int questions) {
    Script script{{""}, "", questions};
    for (int i = 0; i < questions; ++i) {
        const Aphorism& aphorism = book_aphorisms[i % std::size(book_aphorisms)];
        script.reads[0].append(aphorism.question);
        script.answers.append(aphorism.answer);
    }
    return script;
}

Script split_in_two() { return {{"Beautiful is bet", "ter than?"}, "Ugly.", 1}; }

Script byte_by_byte() {
    Script script{{}, "Ugly.", 1};
    for (char c : std::string_view("Beautiful is better than?")) script.reads.emplace_back(1, c);
    return script;
}

Script unknown_question() { return {{"Ugly is better than?"}, std::string(unknown_aphorism_answer), 1}; }

// Whitespace before the question, in the same read.
Script leading_whitespace() { return {{"\r\n Beautiful is better than?"}, "Ugly.", 1}; }

// A line typed into nc: the newline after the question is the next question's leading space,
// and it arrives with this read.
Script typed_line() { return {{"Beautiful is better than?\n"}, "Ugly.", 1}; }

// Stands in for the socket's send buffer: send() copies the answers into it.
char socket_buffer[256 * 1024];

// The drivers' write step, with a send() that always takes everything. Returns the bytes sent,
// written from socket_buffer + offset on.
std::size_t send_answers(Session& session, std::size_t offset) {
    std::size_t sent = 0;
    for (std::string_view out = session.pending_output(); !out.empty(); out = session.pending_output()) {
        const std::size_t n = std::min(out.size(), sizeof socket_buffer - offset - sent);
        if (n == 0) break;
        std::memcpy(socket_buffer + offset + sent, out.data(), n);
        session.consume_output(n);
        sent += n;
    }
    return sent;
}

// One turn of the conversation: every read of the script, each followed by the write step.
std::size_t converse(Session& session, const Script& script) {
    std::size_t sent = 0;
    for (const std::string& read : script.reads) {
        session.receive(read);
        sent += send_answers(session, sent);
    }
    benchmark::ClobberMemory();
    return sent;
}

// Checks one turn: the right answers, nothing left over, the session still open for more.
bool check_turn(benchmark::State& state, Session& session, const Script& script) {
    const auto before = session.answered();
    const std::size_t sent = converse(session, script);
    const std::string_view got(socket_buffer, sent);
    if (got != script.answers) {
        micro::fail(state, "answered '" + std::string(got) + "', expected '" + script.answers + "'");
        return false;
    }
    if (session.answered() - before != static_cast<std::uint64_t>(script.questions) ||
        session.status() != Session::Status::open || session.has_partial_question()) {
        micro::fail(state, "the session is not back at a question boundary after the turn");
        return false;
    }
    return true;
}

void session_conversation(benchmark::State& state, const Script& script) {
    Session session(book_table(), SessionLimits{});
    if (!check_turn(state, session, script)) return;
    const auto answered_before = session.answered();
    const micro::AllocationCount allocations;
    for (auto _ : state) {
        std::size_t sent = converse(session, script);
        benchmark::DoNotOptimize(sent);
    }
    allocations.report(state);
    if (session.answered() - answered_before != static_cast<std::uint64_t>(state.iterations() * script.questions)) {
        micro::fail(state, "questions went unanswered in the timed loop");
        return;
    }
    micro::count_items(state, script.questions);
}

BENCHMARK_CAPTURE(session_conversation, whole_question, whole_question());
BENCHMARK_CAPTURE(session_conversation, pipelined_16, pipelined(16));
BENCHMARK_CAPTURE(session_conversation, pipelined_256, pipelined(256));
BENCHMARK_CAPTURE(session_conversation, split_in_two_reads, split_in_two());
BENCHMARK_CAPTURE(session_conversation, byte_by_byte, byte_by_byte());
BENCHMARK_CAPTURE(session_conversation, unknown_question, unknown_question());
BENCHMARK_CAPTURE(session_conversation, leading_whitespace, leading_whitespace());
BENCHMARK_CAPTURE(session_conversation, typed_line, typed_line());

// A whole short connection: a new session, one question, its answer, EOF — the per-connection
// cost of the protocol core (the servers make one session per accepted client).
void session_one_question_connection(benchmark::State& state) {
    const Script script = whole_question();
    auto connection = [&script] {
        Session session(book_table(), SessionLimits{});
        std::size_t sent = converse(session, script);
        session.receive_eof();
        sent += send_answers(session, sent);
        return std::pair{sent, session.done() && session.status() == Session::Status::finished};
    };
    const auto [sent, done] = connection();
    if (std::string_view(socket_buffer, sent) != script.answers || !done) {
        micro::fail(state, "a one-question connection did not end with its answer and a normal close");
        return;
    }
    const micro::AllocationCount allocations;
    for (auto _ : state) {
        auto result = connection();
        benchmark::DoNotOptimize(result);
    }
    allocations.report(state);
    micro::count_items(state, 1);
}
BENCHMARK(session_one_question_connection);

// The table lookup alone: the part of a question's cost that is not the session's.
void aphorism_table_answer(benchmark::State& state) {
    const AphorismTable& table = book_table();
    const std::string question = "Beautiful is better than?";
    if (table.answer(question) != "Ugly.") {
        micro::fail(state, "the book's table does not answer 'Ugly.'");
        return;
    }
    const micro::AllocationCount allocations;
    for (auto _ : state) {
        std::string_view answer = table.answer(question);
        benchmark::DoNotOptimize(answer);
    }
    allocations.report(state);
    micro::count_items(state, 1);
}
BENCHMARK(aphorism_table_answer);

}  // namespace
}  // namespace zen
