#include "base/suggest.hpp"

#include <algorithm>

namespace zen {

namespace {

constexpr std::size_t most_suggested = 3;

std::size_t allowed_distance(std::size_t length) { return length <= 4 ? 1 : length <= 7 ? 2 : 3; }

std::vector<std::size_t> prefixed(std::string_view word, const std::vector<std::string>& names) {
    std::vector<std::size_t> found;
    if (word.size() < 2) return found;
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (names[i].size() > word.size() && std::string_view(names[i]).substr(0, word.size()) == word) {
            found.push_back(i);
        }
    }
    if (found.size() > most_suggested) found.clear();
    return found;
}

std::vector<std::size_t> nearest_by_distance(std::string_view word, const std::vector<std::string>& names) {
    std::vector<std::size_t> found;
    if (word.size() < 3) return found;
    std::size_t best = allowed_distance(word.size());
    for (std::size_t i = 0; i < names.size(); ++i) {
        const std::size_t distance = edit_distance(word, names[i]);
        if (distance > best || distance >= names[i].size()) continue;  // "x" is one edit from "q", not near it
        if (distance < best) {
            best = distance;
            found.clear();
        }
        if (distance == best) found.push_back(i);
    }
    if (found.size() > most_suggested) found.clear();
    return found;
}

}  // namespace

std::size_t edit_distance(std::string_view a, std::string_view b) {
    // Three rows of the table: two back (for a swap), the one before, this one.
    std::vector<std::size_t> before_last(b.size() + 1), last(b.size() + 1), row(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) last[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
        row[0] = i;
        for (std::size_t j = 1; j <= b.size(); ++j) {
            const std::size_t substitution = last[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
            row[j] = std::min({last[j] + 1, row[j - 1] + 1, substitution});
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
                row[j] = std::min(row[j], before_last[j - 2] + 1);
            }
        }
        std::swap(before_last, last);
        std::swap(last, row);
    }
    return last[b.size()];
}

std::vector<std::size_t> nearest_names(std::string_view word, const std::vector<std::string>& names) {
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (names[i] == word) return {i};
    }
    std::vector<std::size_t> found = prefixed(word, names);
    return found.empty() ? nearest_by_distance(word, names) : found;
}

std::string word_list(const std::vector<std::string>& words, std::string_view conjunction) {
    std::string text;
    for (std::size_t i = 0; i < words.size(); ++i) {
        if (i + 1 == words.size() && i > 0) {
            text.append(" ").append(conjunction).append(" ");
        } else if (i > 0) {
            text.append(", ");
        }
        text.append(words[i]);
    }
    return text;
}

}  // namespace zen
