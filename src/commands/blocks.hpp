// `zen blocks`: chapter 5's blocks.py — length-prefixed blocks on a stream, a zero-length block
// to end it.
#pragma once

#include "proto/framing.hpp"
#include "commands/one_shot.hpp"

namespace zen {

struct BlocksOptions {
    DemoOptions demo;
    std::size_t max_block = default_max_block;
};

CLI::App* add_blocks_command(CLI::App& zen, BlocksOptions& options);
int run_blocks(const BlocksOptions& options);

}  // namespace zen
