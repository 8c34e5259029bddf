#include "runtime/tracing.hpp"

#include <unistd.h>

namespace zen {

void write_trace(const ServerContext& context, std::string_view when) {
    if (context.trace == nullptr) return;
    const std::string path = expand_trace_path(context.options.trace, static_cast<long>(::getpid()));
    const std::size_t events = context.trace->recorded();
    if (auto written = context.trace->write(context.options.trace); !written) {
        context.log.server(LogLevel::error, "trace_error", "Trace (" + std::string(when) + "): " + written.error());
        return;
    }
    context.log.server(LogLevel::info, "trace", "Trace (" + std::string(when) + "): " + std::to_string(events) +
                                                   " events written to " + path,
                       {{"events", events}});
}

}  // namespace zen
