#include "base/cli.hpp"

#include <cmath>
#include <iomanip>
#include <sstream>

namespace zen {

namespace {

std::string seconds_text(std::chrono::milliseconds value) {
    std::ostringstream text;
    text << static_cast<double>(value.count()) / 1000.0;
    return text.str();
}

}  // namespace

CLI::Validator port_number(int lowest) {
    return CLI::Validator(
        [lowest](std::string& text) -> std::string {
            const std::string expected =
                "expected a port number from " + std::to_string(lowest) + " to 65535, got '" + text + "'";
            if (text.empty() || text.size() > 5 || text.find_first_not_of("0123456789") != std::string::npos) {
                return expected;
            }
            const int port = std::stoi(text);
            return port < lowest || port > 65535 ? expected : std::string();
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

}  // namespace zen
