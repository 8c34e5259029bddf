// One edge-triggered epoll loop serving the clients of one listener. --arch epoll runs one;
// --arch reuseport runs one per thread, each on its own SO_REUSEPORT listener.
#pragma once

#include <vector>

#include "servers/options.hpp"

namespace zen {

// Serves until a stop or quit has emptied it. all_listener_fds are every listener of the server
// (for --exit-idle: no client may be waiting in any of them). Returns the exit code.
int run_epoll_loop(int listener_fd, const std::vector<int>& all_listener_fds, const ServerContext& context);

}  // namespace zen
