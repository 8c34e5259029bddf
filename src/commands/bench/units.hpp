// How zen bench writes numbers for people: thousands grouped, durations in the unit that suits
// them (ns, µs, ms, s). Machine output (JSON, CSV) keeps fixed units named in its keys instead.
#pragma once

#include <cstdint>
#include <string>

namespace zen {

// 1234567 -> "1,234,567".
std::string grouped(std::uint64_t value);

// Three significant figures or more in the largest unit that keeps the value at least 1:
// 850 -> "850 ns", 265'200 -> "265 µs", 4'394'900 -> "4.39 ms", 1'992'294'400 -> "1.99 s".
std::string scaled_duration(double nanoseconds);

}  // namespace zen
