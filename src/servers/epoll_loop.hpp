// One edge-triggered epoll loop serving the clients of one listener. --arch epoll runs one;
// --arch reuseport runs one per thread, each on its own SO_REUSEPORT listener.
#pragma once

#include <memory>
#include <vector>

#include "net/listener.hpp"
#include "runtime/options.hpp"

namespace zen {

// A loop whose epoll instance and watches exist, ready to run in any one thread.
class EpollServerLoop {
public:
    virtual ~EpollServerLoop() = default;
    // Serves until a stop or quit has emptied it. Returns the exit code.
    virtual int run() = 0;
};

// Sets up a loop for `listener` (it must outlive the loop); all_listener_fds are every listener of the server (for
// --exit-idle: no client may be waiting in any of them). Null when the set-up failed, the cause
// given to startup_failed(). Set-up and serving are apart so that reuseport can set up all its
// loops before it announces that it serves.
std::unique_ptr<EpollServerLoop> make_epoll_loop(const Listener& listener, const std::vector<int>& all_listener_fds,
                                                 const ServerContext& context);

}  // namespace zen
