// --arch per-client: a new thread for every connection (the book's srv_legacy1.py, which uses
// socketserver's ThreadingMixIn).
//
// Model: the main thread only accepts; each accepted client gets a thread of its own that runs
// the conversation driver and ends with it. Concurrency is bounded only by memory and the
// system's thread limit.
// Blocks: the main thread in poll() on the listener; each client thread in recv() and send().
// Connection limit: none of its own (threads cost about one stack each: 8 MiB reserved, a few
// pages touched). When a thread cannot be created, that client is logged as refused (counted with
// the busy ones) and closed; the server goes on.
// EAGAIN/EINTR, short writes, EOF, EMFILE: as --arch single (src/servers/blocking.cpp).
// Stop: accepting ends, the watchdog interrupts every client thread's recv(), each drains, then
// the process exits.
#include <memory>

#include "conn/client_log.hpp"
#include "servers/blocking.hpp"
#include "runtime/accepting.hpp"
#include "runtime/startup.hpp"
#include "runtime/threads.hpp"
#include "runtime/tracing.hpp"
#include "servers/registry.hpp"

namespace zen {

int serve_per_client(Listener& listener, const ServerContext& context) {
    const BlockingStopWatchdog watchdog(context);
    ThreadGroup conversations;
    int code = 0;
    trace_thread_name(context, "listener");
    if (!announce_serving(listener, context)) return 1;
    while (wait_for_client(listener, context) == ListenerWake::connection) {
        AcceptOutcome accepted = accept_client(listener, true);
        const TimePoint accepted_at = context.trace != nullptr ? TraceRecorder::now() : TimePoint{};
        if (accepted.status != AcceptStatus::accepted) {
            if (handle_accept_problem(accepted, context)) continue;
            code = 1;
            break;
        }
        const std::string peer = format_address(accepted.client.peer);
        // std::function needs a copyable callable: share the client with the thread.
        auto client = std::make_shared<AcceptedClient>(std::move(accepted.client));
        const std::uint64_t flow = trace_flow_leaves(context, accepted_at);
        auto started = conversations.start([client, &context, flow] {
            trace_thread_name(context, "conversation");
            trace_flow_arrives(context, flow);
            converse(std::move(*client), context);
        });
        if (!started) {
            log_refused(context, peer, "cannot start a thread: " + started.error(), Counter::refused_busy);
        }
    }
    conversations.wait_all();
    return code;
}

}  // namespace zen
