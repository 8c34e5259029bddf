// What this zen is and what it runs on: for `zen --version` and the server's first log line.
#pragma once

#include <string>
#include <string_view>

namespace zen {

std::string_view zen_version();
// The git commit the build was configured from, "unknown" outside a git checkout.
std::string_view zen_commit();
// The compiler that built zen and its version, e.g. "g++ 12.2.0".
std::string compiler_text();
// What io_uring offers on this kernel (its feature bits by name, and which of the opcodes zen
// uses or might use it supports), or "io_uring: unavailable (<errno text>)" when no ring can be
// set up. Several lines.
std::string uring_report();
// The whole `zen --version` text.
std::string version_report();

}  // namespace zen
