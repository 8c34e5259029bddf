// --arch prefork: worker processes sharing one listener (the 2nd edition's server_multi.py, with
// processes; the model of classic Apache).
//
// Model: the parent binds the listener, then fork()s --workers N processes (default 4). Each
// worker runs the iterative server's loop on the shared listener; up to N clients are served at
// once, the rest wait in the listen backlog. The parent serves no one: it restarts workers that
// die (within 100 ms), throttles one that keeps dying young, decides --exit-idle from a
// connection count the workers keep in shared memory, and stops them on SIGTERM.
// Blocks: workers as --arch single; the parent in poll() on its signal pipes, 100 ms at a time.
// Connection limit: N at a time by construction.
// EAGAIN/EINTR, short writes, EOF, EMFILE: as --arch single, inside each worker.
// How it fails: a worker that dies takes its one conversation with it (the client sees a reset
// or EOF); the other workers and the listener are untouched. Workers die with the parent
// (PR_SET_PDEATHSIG), so a killed parent leaves no orphans serving.
// Stop: SIGTERM/SIGINT to the parent is passed to every worker, which drains like --arch single;
// workers still alive past the drain deadline are killed. The parent's only other thread is the
// SIGUSR1/SIGHUP thread (OperatorSignals), fully started and idle in sigwait() before the first
// fork() (so fork() stays simple and safe); each worker has its own, and its own hard-stop
// watchdog. SIGQUIT (or --exit-idle) lets workers finish their conversations, however long they
// take. SIGHUP: each process owns its log descriptor and its copy of the table, so the parent
// reloads (for the workers it will start) and then passes SIGHUP on to every worker, which
// reloads too and logs its own line.
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <vector>

#include "net/io.hpp"
#include "net/signals.hpp"
#include "servers/blocking.hpp"
#include "runtime/tracing.hpp"
#include "runtime/operator.hpp"
#include "runtime/startup.hpp"
#include "runtime/stopping.hpp"
#include "conn/connection_tracker.hpp"
#include "servers/registry.hpp"

namespace zen {

namespace {

using std::chrono::milliseconds;

// A worker that dies sooner than this after its start counts as crashing.
constexpr milliseconds crash_window{1000};
constexpr milliseconds first_backoff{100};
constexpr milliseconds longest_backoff{10'000};

struct WorkerSlot {
    pid_t pid = -1;
    TimePoint started;
    TimePoint next_start;  // when a dead worker may be started again
    int quick_deaths = 0;          // deaths in a row within crash_window of starting
};

std::string describe_exit(int status) {
    if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) return "was killed by signal " + std::to_string(WTERMSIG(status));
    return "ended";
}

[[noreturn]] void run_worker(Listener& listener, const ServerContext& parent_context, pid_t parent, std::size_t index) {
    ::prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (::getppid() != parent) ::_exit(0);  // the parent died before prctl took effect
    int code = 1;
    if (reinstall_stop_signals_in_child()) {
        block_stop_signals(false);
        ServerContext context = parent_context;
        context.decides_idle_exit = false;  // the parent sees every worker's connections
        const std::string name = "prefork child " + std::to_string(index + 1);
        trace_process_name(context, name);  // the parent writes the trace, children's events too
        trace_thread_name(context, name);
        const OperatorSignals operator_signals(context, "Worker pid " + std::to_string(::getpid()) + ": ");
        BlockingStopWatchdog watchdog(context);
        code = accept_loop(listener, context);
    }
    std::fflush(stdout);
    ::_exit(code);
}

bool start_worker(WorkerSlot& slot, std::size_t index, Listener& listener, const ServerContext& context) {
    block_stop_signals(true);  // a signal between fork() and the child's new pipes would reach us
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid == 0) run_worker(listener, context, parent, index);
    block_stop_signals(false);
    if (pid < 0) {
        startup_failed(context, "worker_error", "cannot start worker " + std::to_string(index + 1) + ": " + errno_text(errno));
        slot.next_start = Clock::now() + first_backoff;
        return false;
    }
    slot.pid = pid;
    slot.started = Clock::now();
    context.log.server(LogLevel::info, "worker_started",
                       "Started worker " + std::to_string(index + 1) + " (pid " + std::to_string(pid) + ")");
    return true;
}

// Reaps every worker that has exited; returns how many did.
int reap_workers(std::vector<WorkerSlot>& slots, const ServerContext& context, bool restart) {
    int reaped = 0;
    for (;;) {
        int status = 0;
        const pid_t pid = ::waitpid(-1, &status, WNOHANG);
        if (pid <= 0) return reaped;
        const auto slot = std::find_if(slots.begin(), slots.end(), [pid](const WorkerSlot& s) { return s.pid == pid; });
        if (slot == slots.end()) continue;
        ++reaped;
        slot->pid = -1;
        const std::string name =
            "Worker " + std::to_string(slot - slots.begin() + 1) + " (pid " + std::to_string(pid) + ")";
        if (!restart) continue;
        const auto now = Clock::now();
        if (now - slot->started < crash_window) {
            ++slot->quick_deaths;
        } else {
            slot->quick_deaths = 0;
        }
        if (slot->quick_deaths <= 1) {
            slot->next_start = now;
            context.log.server(LogLevel::warning, "worker_died", name + " " + describe_exit(status) + "; starting a new one");
        } else {
            const auto backoff = std::min<milliseconds>(longest_backoff, first_backoff * (1 << std::min(slot->quick_deaths, 10)));
            slot->next_start = now + backoff;
            context.log.server(LogLevel::warning, "worker_died",
                               name + " " + describe_exit(status) + " " + std::to_string(slot->quick_deaths) +
                                   " times in a row within a second of starting; throttled: next start in " +
                                   std::to_string(backoff.count()) + " ms");
        }
    }
}

void signal_workers(const std::vector<WorkerSlot>& slots, int signal_number) {
    for (const WorkerSlot& slot : slots) {
        if (slot.pid > 0) ::kill(slot.pid, signal_number);
    }
}

bool any_alive(const std::vector<WorkerSlot>& slots) {
    return std::any_of(slots.begin(), slots.end(), [](const WorkerSlot& s) { return s.pid > 0; });
}

// Stops every worker and waits for them all: those that cannot be started at start-up.
void stop_all(std::vector<WorkerSlot>& slots, const ServerContext& context) {
    signal_workers(slots, SIGTERM);
    while (any_alive(slots)) {
        ::poll(nullptr, 0, 10);
        reap_workers(slots, context, false);
    }
}

// Keeps the pool full until a stop or a quit (SIGQUIT, --exit-idle); passes reloads on. Returns
// true for a quit, false for a stop.
bool keep_the_pool_full(std::vector<WorkerSlot>& slots, Listener& listener, const ServerContext& context,
                        std::uint64_t reloads_passed_on) {
    while (!stop_requested()) {
        pollfd fds[2] = {{stop_fd(), POLLIN, 0}, {quit_fd(), POLLIN, 0}};
        ::poll(fds, 2, 100);
        if (const std::uint64_t reloads = reloads_done(); reloads != reloads_passed_on) {
            reloads_passed_on = reloads;
            signal_workers(slots, SIGHUP);
        }
        reap_workers(slots, context, !quit_requested());
        if (stop_requested()) break;
        if (quit_requested()) return true;
        if (idle_exit_due(context, {listener.fd.get()}, Clock::now())) {
            quit_for_idleness(context);
            return true;
        }
        const auto now = Clock::now();
        for (std::size_t i = 0; i < slots.size(); ++i) {
            if (slots[i].pid < 0 && now >= slots[i].next_start) start_worker(slots[i], i, listener, context);
        }
    }
    return false;
}

// A quit lets conversations finish; a stop (even one arriving mid-quit) drains with a deadline,
// after which the workers left are killed. Returns the exit code.
int wind_down(std::vector<WorkerSlot>& slots, bool quitting, const ServerContext& context) {
    signal_workers(slots, quitting && !stop_requested() ? SIGQUIT : SIGTERM);
    bool forwarded_stop = stop_requested();
    while (any_alive(slots)) {
        if (stop_requested() && !forwarded_stop) {
            signal_workers(slots, SIGTERM);
            forwarded_stop = true;
        }
        if (stop_requested() && Clock::now() >= drain_deadline(context) + hard_stop_grace / 2) {
            context.log.server(LogLevel::error, "hard_stop",
                               "Drain time (" + duration_text(context.options.drain_timeout) +
                                   ") is over with workers still running: stopping hard (SIGKILL)");
            signal_workers(slots, SIGKILL);
            while (any_alive(slots)) {
                reap_workers(slots, context, false);
                ::poll(nullptr, 0, 10);
            }
            return 1;
        }
        ::poll(nullptr, 0, 10);
        reap_workers(slots, context, false);
    }
    return 0;
}

}  // namespace

int serve_prefork(Listener& listener, const ServerContext& context) {
    std::vector<WorkerSlot> slots(static_cast<std::size_t>(context.options.workers > 0 ? context.options.workers : 4));
    // Counted before the first fork(): a reload while workers start reaches them too (one
    // started after it is signalled needlessly and just reloads again).
    const std::uint64_t reloads_passed_on = reloads_done();
    trace_thread_name(context, "parent");
    bool started = true;
    for (std::size_t i = 0; i < slots.size() && started; ++i) started = start_worker(slots[i], i, listener, context);
    if (!started || !announce_serving(listener, context)) {
        // A pool that cannot be filled at start-up is a failed start, not a server in backoff.
        stop_all(slots, context);
        return 1;
    }
    const bool quitting = keep_the_pool_full(slots, listener, context, reloads_passed_on);
    return wind_down(slots, quitting, context);
}

}  // namespace zen
