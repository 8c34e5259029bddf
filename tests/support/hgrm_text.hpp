// Reading HdrHistogram's .hgrm percentile text, as the bench tests check what zen bench writes:
// the unit tests (write_hgrm in memory) and the process tests (the files of --hdr-file).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

namespace zen::test {

struct HgrmLine {
    double value, percentile;
    std::uint64_t total;
    std::string inverse;
};

// The data lines of a .hgrm text, and its footer lines; the header is checked on the way.
inline std::vector<HgrmLine> hgrm_lines(const std::string& text, std::vector<std::string>* footer = nullptr) {
    std::istringstream lines(text);
    std::vector<HgrmLine> parsed;
    std::string line;
    std::getline(lines, line);
    EXPECT_EQ(line, "       Value     Percentile TotalCount 1/(1-Percentile)");
    std::getline(lines, line);
    EXPECT_EQ(line, "");
    while (std::getline(lines, line)) {
        if (line.rfind("#[", 0) == 0) {
            if (footer) footer->push_back(line);
            continue;
        }
        std::istringstream words(line);
        HgrmLine entry{};
        words >> entry.value >> entry.percentile >> entry.total >> entry.inverse;
        EXPECT_FALSE(words.fail()) << line;
        parsed.push_back(entry);
    }
    return parsed;
}

}  // namespace zen::test
