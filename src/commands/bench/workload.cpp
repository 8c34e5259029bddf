#include "commands/bench/workload.hpp"

#include <algorithm>

#include "proto/aphorisms.hpp"
#include "proto/bytes_repr.hpp"

namespace zen {

namespace {

int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

Workload finish(Workload workload) {
    for (const Exchange& exchange : workload.exchanges)
        workload.longest_answer = std::max(workload.longest_answer, exchange.answer.size());
    return workload;
}

}  // namespace

Result<std::string> decode_escapes(std::string_view text) {
    std::string bytes;
    for (std::size_t i = 0; i < text.size(); ++i) {
        if (text[i] != '\\') {
            bytes += text[i];
            continue;
        }
        if (++i == text.size()) return Error{"a lone backslash ends " + bytes_repr(text)};
        switch (text[i]) {
            case 'r': bytes += '\r'; break;
            case 'n': bytes += '\n'; break;
            case 't': bytes += '\t'; break;
            case '0': bytes += '\0'; break;
            case '\\': bytes += '\\'; break;
            case 'x': {
                const int high = i + 1 < text.size() ? hex_digit(text[i + 1]) : -1;
                const int low = i + 2 < text.size() ? hex_digit(text[i + 2]) : -1;
                if (high < 0 || low < 0) return Error{"\\x needs two hex digits in " + bytes_repr(text)};
                bytes += static_cast<char>(high * 16 + low);
                i += 2;
                break;
            }
            default:
                return Error{std::string("unknown escape \\") + text[i] + " in " + bytes_repr(text) +
                             " (use \\r \\n \\t \\0 \\\\ or \\xHH)"};
        }
    }
    return bytes;
}

Workload zen_workload() {
    Workload workload;
    for (const Aphorism& aphorism : book_aphorisms)
        workload.exchanges.push_back({std::string(aphorism.question), std::string(aphorism.answer)});
    return finish(std::move(workload));
}

Result<Workload> custom_workload(const std::vector<std::string>& questions, const std::vector<std::string>& answers,
                                 const std::string& suffix) {
    if (questions.size() != answers.size())
        return Error{"every --question needs an --answer (got " + std::to_string(questions.size()) + " and " +
                     std::to_string(answers.size()) + ")"};
    Workload workload;
    for (std::size_t i = 0; i < questions.size(); ++i) {
        auto question = decode_escapes(questions[i]);
        if (!question) return Error{"--question: " + question.error()};
        auto answer = decode_escapes(answers[i]);
        if (!answer) return Error{"--answer: " + answer.error()};
        if (question->empty()) return Error{"--question must not be empty"};
        if (answer->empty()) return Error{"--answer must not be empty"};
        workload.exchanges.push_back({std::move(*question), std::move(*answer)});
    }
    if (suffix.empty()) {
        workload.suffix = workload.exchanges.front().answer.back();
    } else {
        auto decoded = decode_escapes(suffix);
        if (!decoded) return Error{"--suffix: " + decoded.error()};
        if (decoded->size() != 1) return Error{"--suffix must be one byte, not " + bytes_repr(*decoded)};
        workload.suffix = decoded->front();
    }
    for (const Exchange& exchange : workload.exchanges) {
        if (answer_end(exchange.answer, workload.suffix) != exchange.answer.size())
            return Error{"the answer " + bytes_repr(exchange.answer) + " must end with the suffix " +
                         bytes_repr(std::string(1, workload.suffix)) + " and hold it nowhere else (see --suffix)"};
    }
    return finish(std::move(workload));
}

}  // namespace zen
