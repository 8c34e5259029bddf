#include "base/text.hpp"

#include <cstring>

namespace zen {

std::string errno_text(int error) { return "[Errno " + std::to_string(error) + "] " + std::strerror(error); }

}  // namespace zen
