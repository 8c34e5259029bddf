// `zen streamer`: chapter 5's streamer.py — a message framed by end of file, with each side
// shutting down the direction it will not use.
#pragma once

#include "commands/one_shot.hpp"
#include "proto/framing.hpp"

namespace zen {

struct StreamerOptions {
    DemoOptions demo;
    std::size_t max_message = default_max_block;
};

CLI::App* add_streamer_command(CLI::App& zen, StreamerOptions& options);
int run_streamer(const StreamerOptions& options);

}  // namespace zen
