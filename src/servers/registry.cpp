#include "servers/options.hpp"

namespace zen {

const std::vector<Architecture>& architectures() {
    static const std::vector<Architecture> all = {
        {"single", "one client at a time; others wait in the listen backlog (srv_single.py)", serve_single},
        {"threaded", "--workers threads, each accepting and serving one client at a time (srv_threaded.py)",
         serve_threaded},
        {"per-client", "a new thread for every connection (srv_legacy1.py, socketserver)", serve_per_client},
        {"prefork", "--workers processes sharing the listener, replaced when they die (server_multi.py)",
         serve_prefork},
        {"poll", "one thread, a poll() state machine (srv_async.py)", serve_poll},
        {"epoll", "one thread, an edge-triggered epoll reactor", serve_epoll},
        {"callbacks", "an asyncio.Protocol-style protocol on zen's event-loop framework (srv_asyncio1.py)",
         serve_callbacks},
        {"chat", "an asynchat-style channel on the same framework (srv_legacy2.py)", serve_chat},
        {"coroutines", "C++20 coroutines on standalone Asio, one per client (srv_asyncio2.py)", serve_coroutines},
        {"reuseport", "--workers epoll loops, each with its own SO_REUSEPORT listener", serve_reuseport, true},
        {"uring", "one thread, a completion-based io_uring loop (liburing): beyond the book", serve_uring},
    };
    return all;
}

const Architecture* find_architecture(std::string_view name) {
    for (const Architecture& architecture : architectures()) {
        if (architecture.name == name) return &architecture;
    }
    return nullptr;
}

}  // namespace zen
