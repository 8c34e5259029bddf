#include "runtime/startup.hpp"

#include <signal.h>
#include <systemd/sd-daemon.h>

#include <cerrno>
#include <mutex>

#include "base/text.hpp"
#include "net/readiness.hpp"
#include "net/signals.hpp"

namespace zen {

namespace {

// Process-wide: one server per process, and a prefork worker (born before the announcement)
// never announces on its own.
std::mutex startup_mutex;
bool announced = false;
std::string first_failure;

}  // namespace

bool announce_serving(const Listener& listener, const ServerContext& context) {
    const std::lock_guard lock(startup_mutex);
    if (announced) return true;
    // READY=1 first. sd_notify() is a no-op unless systemd asked for it (NOTIFY_SOCKET), and
    // needs a socket of its own: without a descriptor for it, the start-up has failed, rather
    // than leave a server systemd never hears from. A NOTIFY_SOCKET nobody listens on (a
    // variable left in a shell) is no supervisor waiting: said in the log, and we serve.
    const int notified = ::sd_notify(0, "READY=1");
    const bool short_of_resources =
        notified == -EMFILE || notified == -ENFILE || notified == -ENOBUFS || notified == -ENOMEM;
    if (short_of_resources) {
        if (first_failure.empty()) first_failure = "cannot tell systemd READY=1: " + errno_text(-notified);
        return false;
    }
    announced = true;
    announce_accepting();  // /ready turns 200
    context.log.server(LogLevel::info, "listening", "Listening at " + listener.display);
    if (notified < 0) {
        context.log.server(LogLevel::warning, "notify_error",
                           "Cannot tell systemd READY=1 (NOTIFY_SOCKET): " + errno_text(-notified));
    }
    return true;
}

bool serving_announced() {
    const std::lock_guard lock(startup_mutex);
    return announced;
}

int startup_failed(const ServerContext& context, std::string_view event, std::string_view cause) {
    {
        const std::lock_guard lock(startup_mutex);
        if (!announced) {
            if (first_failure.empty()) first_failure = cause;
            return 1;
        }
    }
    // A log line begins with a capital, as the others do; stderr's follows "zen serve: ".
    std::string line(cause);
    if (!line.empty() && line[0] >= 'a' && line[0] <= 'z') line[0] = static_cast<char>(line[0] - 'a' + 'A');
    context.log.server(LogLevel::error, event, line);
    return 1;
}

std::string startup_failure() {
    const std::lock_guard lock(startup_mutex);
    return first_failure;
}

void log_why_stopped(const ServerContext& context) {
    const char* signal_name = nullptr;
    if (stop_requested()) {
        signal_name = stop_signal_number() == SIGINT ? "SIGINT" : "SIGTERM";
    } else if (quit_signal_received()) {
        signal_name = "SIGQUIT";
    }
    if (signal_name != nullptr) context.log.server(LogLevel::info, "stopped", std::string("Stopped on ") + signal_name);
}

}  // namespace zen
