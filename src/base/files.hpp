// Reading a file zen is given at start-up (--aphorisms, the hosts tables), bounded: only a regular
// file (a FIFO would block, /dev/zero never ends, a directory is no table) and at most max_bytes
// of it. The error is one line that names the file and what is wrong with it.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace zen {

Result<std::string> read_bounded_file(const std::string& path, std::size_t max_bytes);

// At most `width` bytes of text for a message, with "..." when it was longer: a line of the log or
// of stderr stays readable whatever a file holds.
std::string shortened(std::string_view text, std::size_t width = 60);

}  // namespace zen
