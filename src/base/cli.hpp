// Command-line pieces every subcommand shares: CLI11 checks whose failures read as one clear line,
// and the one place where CLI11's errors become zen's own words.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace zen {

// Every check here fails with "expected ..., got '...'", which usage_error_line() puts after the
// option's name; it shows in --help as CLI11's own checks do (the bash completion reads that).

// A TCP port number from `lowest` (0 lets the kernel pick) to 65535.
CLI::Validator port_number(int lowest);

// A duration given in seconds (fractions allowed) from `lowest` up, stored in milliseconds.
CLI::Option* add_seconds_option(CLI::App& app, const std::string& name, std::chrono::milliseconds& target,
                                const std::string& description, double lowest);

// A number from lowest to highest, written in decimal (whole, for an integer type):
// "expected a number from 1 to 1024, got 'x'". number_range<T> below picks `whole` and --help's text.
CLI::Validator number_check(long double lowest, long double highest, bool whole);

template <typename T>
CLI::Validator number_range(T lowest, T highest) {
    CLI::Validator check = number_check(static_cast<long double>(lowest), static_cast<long double>(highest),
                                        std::is_integral_v<T>);
    check.description(CLI::Range(lowest, highest).get_description());
    return check;
}

// One of these words: "expected text or json, got 'x'", "expected one of a, b or c, got 'x'";
// --help shows {a,b,c} as CLI::IsMember does.
CLI::Validator one_of(std::vector<std::string> choices);

// A file that exists and is not a directory: "expected an existing file, got 'x'".
CLI::Validator existing_file();

// The words of `zen ARGS` read as CLI11 will read them, for what it would get wrong or tell in
// its own words: an unknown subcommand or option (with the nearest real one), an option whose
// value is missing or is the next option (CLI11 takes `--workers -p` for --workers 'p'), a flag
// given a value. The line "zen SUB: ... (see zen SUB --help)", or "" when the words are fine.
std::string word_error_line(const CLI::App& zen, const std::vector<std::string>& args);

// The one line for a usage error: word_error_line()'s if it has one, else CLI11's error told in
// zen's words from the options themselves (a bad value, two options that exclude each other, one
// that needs another, an extra argument, ...). Never CLI11's own text.
std::string usage_error_line(CLI::App& zen, const CLI::ParseError& error, const std::vector<std::string>& args);

// Parses `zen`'s command line: nothing when the subcommand may run; else the exit status, after
// --help or --version (0) or a usage error (2, its one line on stderr).
std::optional<int> parse_command_line(CLI::App& zen, int argc, char** argv);

}  // namespace zen
