#include "proto/aphorisms.hpp"

#include "base/files.hpp"

namespace zen {

namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view trim(std::string_view s) {
    while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
    return s;
}

Error line_error(std::size_t line, std::string_view what) {
    return Error{"line " + std::to_string(line) + ": " + std::string(what)};
}

}  // namespace

AphorismTable AphorismTable::book_defaults() {
    AphorismTable table;
    for (const auto& [question, answer] : book_aphorisms) {
        table.add(std::string(question), std::string(answer));
    }
    return table;
}

bool AphorismTable::add(std::string question, std::string answer) {
    if (question.size() > longest_question_) longest_question_ = question.size();
    return answers_.emplace(std::move(question), std::move(answer)).second;
}

Result<AphorismTable> AphorismTable::parse(std::string_view text, std::size_t max_question) {
    AphorismTable table;
    std::size_t line_number = 0;
    while (!text.empty()) {
        ++line_number;
        const auto end = text.find('\n');
        std::string_view line = text.substr(0, end);
        text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);

        if (line.size() > max_aphorism_line)
            return line_error(line_number, "longer than " + std::to_string(max_aphorism_line) + " bytes");
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (trim(line).empty() || line.front() == '#') continue;
        if (is_blank(line.front()))
            return line_error(line_number, "a question may not start with whitespace (clients' leading whitespace is skipped, so it could never match)");

        const auto mark = line.find('?');
        if (mark == std::string_view::npos)
            return line_error(line_number, "no '?' ending the question (expected \"QUESTION? ANSWER.\")");
        const std::string_view question = line.substr(0, mark + 1);
        if (question.size() > max_question)
            return line_error(line_number, "a question of " + std::to_string(question.size()) +
                                               " bytes, longer than --max-question " + std::to_string(max_question));
        const std::string_view answer = trim(line.substr(mark + 1));
        if (answer.empty()) return line_error(line_number, "no answer after the '?'");
        if (answer.back() != '.') return line_error(line_number, "the answer must end with '.'");
        if (answer.find('.') != answer.size() - 1)
            return line_error(line_number, "the answer may contain only one '.', at its end (clients read up to the first '.')");
        if (!table.add(std::string(question), std::string(answer)))
            return line_error(line_number, "duplicate question \"" + shortened(question) + "\"");
    }
    if (table.size() == 0) return Error{"no aphorisms in the file"};
    return table;
}

Result<AphorismTable> AphorismTable::load_file(const std::string& path, std::size_t max_question) {
    auto contents = read_bounded_file(path, max_aphorism_file);
    if (!contents) return Error{"aphorism file: " + contents.error()};
    auto table = parse(*contents, max_question);
    if (!table) return Error{path + ": " + table.error()};
    return table;
}

std::string_view AphorismTable::answer(std::string_view question) const {
    const auto found = answers_.find(question);
    return found == answers_.end() ? unknown_aphorism_answer : std::string_view(found->second);
}

LiveTable::LiveTable(AphorismTable table) : table_(std::make_shared<const AphorismTable>(std::move(table))) {}

void LiveTable::publish(AphorismTable table) {
    auto next = std::make_shared<const AphorismTable>(std::move(table));
    std::shared_ptr<const AphorismTable> previous;  // freed outside the lock
    const std::lock_guard lock(mutex_);
    previous = std::exchange(table_, std::move(next));
    // After the table: whoever sees the new number and then asks current() gets this table.
    generation_.fetch_add(1, std::memory_order_release);
}

std::shared_ptr<const AphorismTable> LiveTable::current() const {
    const std::lock_guard lock(mutex_);
    return table_;
}

}  // namespace zen
