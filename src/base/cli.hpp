// Command-line pieces every subcommand shares: CLI11 checks whose failures read as one clear line.
#pragma once

#include <CLI/CLI.hpp>
#include <chrono>
#include <string>

namespace zen {

// A TCP port number from `lowest` (0 lets the kernel pick) to 65535.
CLI::Validator port_number(int lowest);

// A duration given in seconds (fractions allowed) from `lowest` up, stored in milliseconds.
CLI::Option* add_seconds_option(CLI::App& app, const std::string& name, std::chrono::milliseconds& target,
                                const std::string& description, double lowest);

}  // namespace zen
