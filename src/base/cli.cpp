#include "base/cli.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

#include "base/suggest.hpp"

namespace zen {

namespace {

std::string seconds_text(std::chrono::milliseconds value) {
    std::ostringstream text;
    text << static_cast<double>(value.count()) / 1000.0;
    return text.str();
}

std::string number_text(long double value) {
    std::ostringstream text;
    text << std::setprecision(15) << value;
    return text.str();
}

// Decimal digits only, leading zeros dropped: CLI11 would read "010" as octal 8 and "0x10" as 16.
std::optional<std::string> decimal_digits(const std::string& text) {
    if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) return std::nullopt;
    const std::size_t first = text.find_first_not_of('0');
    std::string digits = first == std::string::npos ? "0" : text.substr(first);
    if (digits.size() > 20) return std::nullopt;  // beyond every range here
    return digits;
}

std::optional<long double> any_number(const std::string& text) {
    std::size_t used = 0;
    long double value = 0;
    try {
        value = std::stold(text, &used);
    } catch (const std::exception&) {
        return std::nullopt;
    }
    if (used != text.size() || !std::isfinite(value)) return std::nullopt;
    return value;
}

}  // namespace

CLI::Validator port_number(int lowest) {
    return CLI::Validator(
        [lowest](std::string& text) -> std::string {
            const std::string expected =
                "expected a port number from " + std::to_string(lowest) + " to 65535, got '" + text + "'";
            const std::optional<std::string> digits = decimal_digits(text);
            if (!digits || digits->size() > 5) return expected;
            const int port = std::stoi(*digits);
            if (port < lowest || port > 65535) return expected;
            text = *digits;  // as CLI11 reads it: "080" would be octal
            return {};
        },
        "PORT");
}

CLI::Option* add_seconds_option(CLI::App& app, const std::string& name, std::chrono::milliseconds& target,
                                const std::string& description, double lowest) {
    constexpr double longest = 365.0 * 24 * 3600;
    return app
        .add_option_function<std::string>(
            name,
            [&target](const std::string& text) {
                const double seconds = std::stod(text);
                // Whole milliseconds, the resolution of every timer here; a positive value never
                // rounds down to 0, which would mean "never".
                const long long ms = std::llround(seconds * 1000);
                target = std::chrono::milliseconds(seconds > 0 && ms == 0 ? 1 : ms);
            },
            description)
        ->type_name("SECONDS")
        ->default_str(seconds_text(target))
        ->check(CLI::Validator(
            [lowest](std::string& text) -> std::string {
                std::size_t used = 0;
                double seconds = -1;
                try {
                    seconds = std::stod(text, &used);
                } catch (const std::exception&) {
                    used = 0;
                }
                if (used != text.size() || !std::isfinite(seconds) || seconds < lowest || seconds > longest) {
                    std::ostringstream message;
                    message << std::setprecision(12) << "expected seconds from " << lowest << " to " << longest << ", got '" << text << "'";
                    return message.str();
                }
                return {};
            },
            "SECONDS"));
}

CLI::Validator number_check(long double lowest, long double highest, bool whole) {
    return CLI::Validator(
        [lowest, highest, whole](std::string& text) -> std::string {
            const std::optional<std::string> digits = whole ? decimal_digits(text) : std::optional<std::string>(text);
            const std::optional<long double> value = digits ? any_number(*digits) : std::nullopt;
            if (!value || *value < lowest || *value > highest) {
                return "expected a number from " + number_text(lowest) + " to " + number_text(highest) + ", got '" +
                       text + "'";
            }
            text = *digits;
            return {};
        },
        "NUMBER");
}

CLI::Validator one_of(std::vector<std::string> choices) {
    const std::string expected = (choices.size() == 2 ? "expected " : "expected one of ") + word_list(choices, "or");
    std::string shown = "{";
    for (const std::string& choice : choices) shown += (shown.size() > 1 ? "," : "") + choice;
    return CLI::Validator(
        [choices, expected](std::string& text) -> std::string {
            if (std::find(choices.begin(), choices.end(), text) != choices.end()) return {};
            return expected + ", got '" + text + "'";
        },
        shown + "}");
}

CLI::Validator existing_file() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            struct stat status {};
            if (::stat(text.c_str(), &status) != 0) return "expected an existing file, got '" + text + "'";
            if (S_ISDIR(status.st_mode)) return "expected a file, not a directory, got '" + text + "'";
            return {};
        },
        "FILE");
}

}  // namespace zen
