// Text helpers every layer shares.
#pragma once

#include <string>

namespace zen {

// Python's wording for an OS error, as the book's logs show it: "[Errno 104] Connection reset by peer".
std::string errno_text(int error);

}  // namespace zen
