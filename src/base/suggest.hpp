// Near misses: which of a few names (options, subcommands) a mistyped word most likely meant.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace zen {

// The Damerau–Levenshtein distance (optimal string alignment): the fewest insertions, deletions,
// substitutions and swaps of two neighbouring characters that turn a into b.
std::size_t edit_distance(std::string_view a, std::string_view b);

// The indexes in `names` of what `word` most likely meant, in their order: the name it equals; else
// the names it begins (two characters at least; at most three of them); else the names nearest by
// edit_distance, within 1 for a word of up to 4 characters, 2 up to 7, 3 beyond (at most three
// names, none for a word under 3 characters). Empty when nothing is near.
std::vector<std::size_t> nearest_names(std::string_view word, const std::vector<std::string>& names);

// "a", "a or b", "a, b or c" (conjunction "or"; "and" likewise).
std::string word_list(const std::vector<std::string>& words, std::string_view conjunction);

}  // namespace zen
