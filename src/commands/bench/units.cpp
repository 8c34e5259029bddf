#include "commands/bench/units.hpp"

#include <cmath>
#include <cstdio>

namespace zen {

std::string grouped(std::uint64_t value) {
    const std::string digits = std::to_string(value);
    std::string text;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) text += ',';
        text += digits[i];
    }
    return text;
}

std::string scaled_duration(double nanoseconds) {
    struct Unit {
        double size;
        const char* name;
    };
    static constexpr Unit units[] = {{1e9, "s"}, {1e6, "ms"}, {1e3, "µs"}, {1, "ns"}};
    const double magnitude = std::fabs(nanoseconds);
    Unit unit = units[3];
    for (const Unit& candidate : units) {
        if (magnitude >= candidate.size) {
            unit = candidate;
            break;
        }
    }
    double value = nanoseconds / unit.size;
    // Rounding can carry into the next unit: 999.96 µs reads as 1.00 ms, not 1000 µs.
    if (unit.size < 1e9 && std::fabs(std::round(value)) >= 1000) {
        unit = unit.size == 1 ? units[2] : (unit.size == 1e3 ? units[1] : units[0]);
        value = nanoseconds / unit.size;
    }
    const double shown = std::fabs(value);
    const int decimals = unit.size == 1 ? 0 : shown < 9.995 ? 2 : shown < 99.95 ? 1 : 0;
    char text[64];
    std::snprintf(text, sizeof text, "%.*f %s", decimals, value, unit.name);
    return text;
}

}  // namespace zen
