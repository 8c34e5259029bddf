// Process-wide resource settings shared by the server and the load generator.
#pragma once

namespace zen {

// Raises the soft limit on open files to the hard limit: for a server or a load generator,
// connections are file descriptors.
void raise_open_file_limit();

}  // namespace zen
