// The aphorism table: exact question (with its '?') -> answer (ending with '.').
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <unordered_map>

#include "base/result.hpp"

namespace zen {

inline constexpr std::string_view unknown_aphorism_answer = "Error: unknown aphorism.";

// What --aphorisms may hold: a table of thousands of aphorisms fits with room to spare.
inline constexpr std::size_t max_aphorism_file = 4 * 1024 * 1024;
inline constexpr std::size_t max_aphorism_line = 64 * 1024;

struct Aphorism {
    std::string_view question;
    std::string_view answer;
};

// The book's table (zen_utils.py), in the book's order; the client asks these.
inline constexpr Aphorism book_aphorisms[] = {
    {"Beautiful is better than?", "Ugly."},
    {"Explicit is better than?", "Implicit."},
    {"Simple is better than?", "Complex."},
};

class AphorismTable {
public:
    // The book's three aphorisms.
    static AphorismTable book_defaults();

    // Parses the --aphorisms file format (see README): one "QUESTION? ANSWER." per line,
    // blank lines and lines starting with '#' ignored. Errors name the line.
    static Result<AphorismTable> parse(std::string_view text);
    static Result<AphorismTable> load_file(const std::string& path);

    // The answer to one whole question, or unknown_aphorism_answer.
    std::string_view answer(std::string_view question) const;

    std::size_t size() const { return answers_.size(); }
    std::size_t longest_question() const { return longest_question_; }

private:
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };
    bool add(std::string question, std::string answer);

    std::unordered_map<std::string, std::string, Hash, std::equal_to<>> answers_;
    std::size_t longest_question_ = 0;
};

}  // namespace zen
