// --trace inside a server: each thread and process that serves names itself, and a connection
// handed from the thread that accepted it to another is drawn as a flow. Without --trace, each
// call is one branch.
#pragma once

#include <string>
#include <string_view>

#include "conn/rules.hpp"
#include "runtime/options.hpp"

namespace zen {

inline void trace_thread_name(const ConnectionContext& context, std::string_view name) {
    if (context.trace != nullptr) context.trace->name_thread(name);
}

inline void trace_process_name(const ConnectionContext& context, std::string_view name) {
    if (context.trace != nullptr) context.trace->name_process(name);
}

// On the accepting thread, as it hands a connection on: an "accept" slice from `accepted` to
// now, holding the start of a flow; returns the flow's id (0 untraced) for trace_flow_arrives().
inline std::uint64_t trace_flow_leaves(const ConnectionContext& context, TimePoint accepted) {
    if (context.trace == nullptr) return 0;
    const std::uint64_t flow = context.trace->next_id();
    context.trace->flow_start("accept", flow, accepted);
    context.trace->complete("accept", accepted, TraceRecorder::now(), 0);
    return flow;
}

// On the thread that serves it: the flow's end, bound to the next slice the thread records.
inline void trace_flow_arrives(const ConnectionContext& context, std::uint64_t flow) {
    if (context.trace != nullptr && flow != 0) context.trace->flow_end("accept", flow);
}

// Writes --trace's file (the events so far) and logs where, or why it could not; `when` names the
// occasion ("at exit", "SIGUSR1"). Without --trace, does nothing.
void write_trace(const ServerContext& context, std::string_view when);

}  // namespace zen
