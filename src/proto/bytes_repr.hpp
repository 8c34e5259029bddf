// Bytes shown the way Python's repr() shows them (b'Ugly.'), so zen's logs and the client's
// output read exactly like the book's transcripts.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace zen {

// Longer input is cut at max_bytes and marked: b'abc'... (4096 bytes)
std::string bytes_repr(std::string_view bytes, std::size_t max_bytes = 200);

}  // namespace zen
