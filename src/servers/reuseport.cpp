// --arch reuseport: "the best of both worlds" of the chapter's advice: several event loops, each
// in its own thread with its own SO_REUSEPORT listener on the same address.
//
// Model: --workers N threads (default: one per CPU this process may run on, so a server pinned
// with taskset or a cpuset gets loops that do not time-slice one core), each running the edge-triggered epoll loop
// of --arch epoll (src/servers/epoll.cpp) on a listener of its own. The kernel hashes each new
// connection to one listener, so the loops share nothing: no lock, no shared accept queue, no
// thundering herd. A connection stays on the loop that accepted it.
// Blocks: each thread only in its epoll_wait() (and --delay, which stalls that thread's clients).
// Connection limit: none of its own; the fd limit.
// EAGAIN, EINTR, short writes, EOF, EMFILE: as --arch epoll, in each loop.
// How it fails: the hash ignores load, so one loop can get more busy clients than another; a
// listener whose loop has stopped would still be given connections, so loops never stop alone.
// Stop: every loop sees SIGTERM/SIGINT and drains; SIGQUIT and --exit-idle end accepting in all
// (the idle check looks at every listener's backlog).
#include <sched.h>

#include <thread>

#include "net/io.hpp"
#include "net/signals.hpp"
#include "runtime/startup.hpp"
#include "runtime/stopping.hpp"
#include "runtime/threads.hpp"
#include "servers/epoll_loop.hpp"
#include "servers/registry.hpp"

namespace zen {

namespace {

// The CPUs this process may run on (its affinity mask), which can be fewer than the machine's.
int usable_cpus() {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    if (::sched_getaffinity(0, sizeof allowed, &allowed) == 0 && CPU_COUNT(&allowed) > 0) return CPU_COUNT(&allowed);
    return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

}  // namespace

int serve_reuseport(Listener& listener, const ServerContext& context) {
    const int workers = context.options.workers > 0 ? context.options.workers : usable_cpus();
    std::vector<Listener> siblings;
    std::vector<int> listener_fds{listener.fd.get()};
    for (int i = 1; i < workers; ++i) {
        auto sibling = open_sibling_listener(listener, context.options.backlog);
        if (!sibling) return startup_failed(context, "listen_error", sibling.error());
        listener_fds.push_back(sibling->fd.get());
        siblings.push_back(std::move(sibling).value());
    }
    // Every loop is set up here, before any runs: a failure is a failed start-up, not a server
    // that announced itself and then lost a loop.
    std::vector<std::unique_ptr<EpollServerLoop>> loops;
    for (std::size_t i = 0; i < listener_fds.size(); ++i) {
        loops.push_back(make_epoll_loop(i == 0 ? listener : siblings[i - 1], listener_fds, context));
        if (!loops.back()) return 1;
    }

    const HardStopWatchdog watchdog(context);
    return serve_on_threads(
        static_cast<int>(loops.size()), "event loop", [&loops](int i) { return loops[static_cast<std::size_t>(i)]->run(); },
        listener, context);
}

}  // namespace zen
