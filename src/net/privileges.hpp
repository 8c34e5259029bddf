// Dropping root after the socket is bound (ports below 1024 need root; serving does not).
#pragma once

#include <string>

#include "base/result.hpp"

namespace zen {

// Switches the process to NAME's user, group and supplementary groups. Already NAME: nothing to
// do. Not root and not NAME: an error.
Result<Ok> drop_privileges(const std::string& name);

}  // namespace zen
