// The aphorism table: exact question (with its '?') -> answer (ending with '.'), and the live
// table a server answers from, replaced whole when SIGHUP re-reads --aphorisms.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <mutex>
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
    // blank lines and lines starting with '#' ignored; a question longer than max_question
    // (--max-question: no client could ask it) is an error. Errors name the line.
    static Result<AphorismTable> parse(std::string_view text,
                                       std::size_t max_question = std::numeric_limits<std::size_t>::max());
    // As parse(), from a regular file of at most max_aphorism_file bytes; errors name the file.
    static Result<AphorismTable> load_file(const std::string& path,
                                           std::size_t max_question = std::numeric_limits<std::size_t>::max());

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

// The table a server answers from now. A reload publishes a whole new table; a session notices
// at its next question by comparing one atomic generation number (a plain load on x86, no lock,
// no reference count) and only then takes the new table, so nothing is ever answered from a
// half-built one and each answer costs what it did with a fixed table. Thread-safe.
class LiveTable {
public:
    explicit LiveTable(AphorismTable table);

    // Replaces the table; sessions answer their next question from it.
    void publish(AphorismTable table);

    // Changes with every publish(); compare before using a table taken earlier.
    std::uint64_t generation() const { return generation_.load(std::memory_order_acquire); }
    // The table now (a lock and a reference count: once per connection and per reload).
    std::shared_ptr<const AphorismTable> current() const;

private:
    mutable std::mutex mutex_;
    std::shared_ptr<const AphorismTable> table_;
    std::atomic<std::uint64_t> generation_{0};
};

}  // namespace zen
