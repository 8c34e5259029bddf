// `zen serve`'s composition root: check every input, open the sockets, start the operator
// threads, run the architecture, report how it ended. Each step is one function below, in order.
#include "commands/serve.hpp"

#include <fcntl.h>
#include <syslog.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>

#include "base/build_info.hpp"
#include "base/resources.hpp"
#include "conn/connection_tracker.hpp"
#include "metrics/endpoint.hpp"
#include "net/io.hpp"
#include "net/privileges.hpp"
#include "net/signals.hpp"
#include "runtime/operator.hpp"
#include "runtime/restart.hpp"
#include "runtime/startup.hpp"
#include "runtime/tracing.hpp"
#include "servers/blocking.hpp"
#include "servers/registry.hpp"

namespace zen {

namespace {

// Where the server's socket comes from: bound here, or passed by inetd or systemd.
struct Inherited {
    int fd = -1;  // -1: nothing was passed, bind
    std::string from;
};

Result<Inherited> inherited_socket(const ServeOptions& options) {
    const int passed = ::sd_listen_fds(1);  // checks LISTEN_PID, then clears the variables
    if (passed < 0) return Error{"systemd socket activation: " + errno_text(-passed)};
    if (passed > 0) {
        if (options.inetd || options.inetd_wait) {
            return Error{"systemd passed a socket (LISTEN_FDS); --inetd and --inetd-wait take it from fd 0 instead"};
        }
        if (passed > 1) return Error{"systemd passed " + std::to_string(passed) + " sockets; zen serves exactly one"};
        return Inherited{SD_LISTEN_FDS_START, "systemd"};
    }
    if (options.inetd || options.inetd_wait) return Inherited{0, "inetd"};
    return Inherited{};
}

// Opens --log-file as the log will, so a file that cannot be used is a usage error before any
// socket is bound. O_NONBLOCK: a FIFO with no reader is refused instead of blocking start-up.
Result<Ok> check_log_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644);
    if (fd < 0) return Error{"--log-file " + path + ": cannot open for appending: " + errno_text(errno)};
    ::close(fd);
    return Ok{};
}

// --trace's file must be writable when the server stops: a folder that does not exist is a usage
// error now, not a lost trace later.
Result<Ok> check_trace_file(const std::string& path) {
    const std::string probe = expand_trace_path(path, static_cast<long>(::getpid())) + ".tmp";
    const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644);
    if (fd < 0) return Error{"--trace " + path + ": cannot write there: " + errno_text(errno)};
    ::close(fd);
    ::unlink(probe.c_str());
    return Ok{};
}

// The server's first log line: what runs, where, and with which limits.
std::string startup_line(const ServeOptions& options, const Architecture& architecture, const std::string& where) {
    const auto seconds = [](std::chrono::milliseconds limit) {
        return limit.count() > 0 ? duration_text(limit) : std::string("off");
    };
    return "zen " + std::string(zen_version()) + " (commit " + std::string(zen_commit()) + ") --arch " +
           std::string(architecture.name) + " at " + where +
           ": max-connections " + (options.max_connections > 0 ? std::to_string(options.max_connections) : "unlimited") +
           ", idle-timeout " + seconds(options.idle_timeout) + ", question-timeout " + seconds(options.question_timeout) +
           ", send-timeout " + seconds(options.send_timeout) + ", tcp-keepalive " + seconds(options.tcp_keepalive) +
           ", max-question " +
           std::to_string(options.limits.max_question) + " bytes, max-pending " +
           std::to_string(options.limits.max_pending) + " bytes, workers " +
           (options.workers > 0 ? std::to_string(options.workers) : "default") + ", drain-timeout " +
           seconds(options.drain_timeout) + (options.exit_idle.count() > 0 ? ", exit-idle " + seconds(options.exit_idle) : "");
}

// Where a start-up failure goes: stderr ("zen serve: ..."), or, when fds 0-2 are a client's
// socket (inetd), syslog or the --log-file.
class StartupReport {
public:
    explicit StartupReport(const ServeOptions& options) : options_(options) {}
    void operator()(std::string_view message) const {
        if (!(options_.inetd || options_.inetd_wait)) {
            std::cerr << "zen serve: " << message << '\n';
        } else if (options_.log.syslog) {
            ::syslog(LOG_DAEMON | LOG_ERR, "zen serve: %.*s", static_cast<int>(message.size()), message.data());
        } else if (FILE* file = std::fopen(options_.log.file.c_str(), "a"); file != nullptr) {
            std::fprintf(file, "zen serve: %.*s\n", static_cast<int>(message.size()), message.data());
            std::fclose(file);
        }
    }

private:
    const ServeOptions& options_;
};

// An exit code, or nothing: go on to the next step.
using Step = std::optional<int>;

// What the steps open, in the order they open it; it lives until the server has stopped.
struct Startup {
    const Architecture* architecture = nullptr;
    AphorismTable table = AphorismTable::book_defaults();
    std::unique_ptr<Log> log;
    std::unique_ptr<MetricsEndpoint> metrics;
    Inherited inherited;                       // what inetd or systemd passed, if anything
    std::optional<Listener> listener;          // to serve: bound, or adopted from inetd or systemd
    std::optional<AcceptedClient> connection;  // or one client (inetd nowait, systemd Accept=yes)
    ConnectionTracker* tracker = nullptr;
    std::unique_ptr<TraceRecorder> trace;  // --trace
};

// --inetd and --inetd-wait: fds 0-2 are the client, so the log goes to syslog unless --log-file;
// --inetd-wait's --exit-idle defaults to 8 s.
ServeOptions with_launch_defaults(ServeOptions options) {
    if ((options.inetd || options.inetd_wait) && options.log.file.empty()) options.log.syslog = true;
    if (options.inetd_wait && !options.exit_idle_given) options.exit_idle = std::chrono::seconds(8);
    return options;
}

// Every input a user gives, checked before anything listens: each bad one is exit 2.
Step check_inputs(const ServeOptions& options, const StartupReport& report, Startup& startup) {
    if (options.proxy.enabled && options.proxy.trusted.empty()) {
        report("--proxy-protocol needs --trusted-proxy CIDR: a header is believed only from a known proxy");
        return 2;
    }
    if (auto tables = check_hosts_tables(options.access); !tables) {
        report(tables.error());
        return 2;
    }
    if (!options.aphorisms_path.empty()) {
        // Without a limit here: the check below says which option is in the way.
        auto loaded = AphorismTable::load_file(options.aphorisms_path);
        if (!loaded) {
            report(loaded.error());
            return 2;
        }
        startup.table = std::move(loaded).value();
    }
    if (startup.table.longest_question() > options.limits.max_question) {
        report("--max-question " + std::to_string(options.limits.max_question) +
               " is shorter than the longest aphorism (" + std::to_string(startup.table.longest_question()) + " bytes)");
        return 2;
    }
    startup.architecture = find_architecture(options.arch);
    if (startup.architecture == nullptr) {
        report("unknown architecture '" + options.arch + "'");
        return 2;
    }
    if (options.no_multishot && startup.architecture->name != "uring") {
        report("--no-multishot applies to --arch uring only");
        return 2;
    }
    return std::nullopt;
}

// The log, what inetd or systemd passed, then the metrics endpoint: all before the server's own
// socket, so an unusable --log-file, passed socket or --metrics address stops zen before it
// listens (exit 2).
Step open_log_and_metrics(const ServeOptions& options, const StartupReport& report, Startup& startup) {
    if (!options.log.file.empty()) {
        if (auto usable = check_log_file(options.log.file); !usable) {
            report(usable.error());
            return 2;
        }
    }
    try {
        startup.log = std::make_unique<Log>(options.log);
    } catch (const std::exception& e) {
        report(std::string("cannot open the log: ") + e.what());
        return 2;
    }
    auto inherited = inherited_socket(options);
    if (!inherited) {
        report(inherited.error());
        return 2;
    }
    startup.inherited = *inherited;
    if (options.metrics.empty()) return std::nullopt;
    if (options.inetd) {
        report("--metrics has nothing to serve with --inetd: each process serves one client and exits");
        return 2;
    }
    auto opened = MetricsEndpoint::open(options.metrics, std::string(startup.architecture->name));
    if (!opened) {
        report(opened.error());
        return 2;
    }
    startup.metrics = std::move(opened).value();
    return std::nullopt;
}

// A socket passed by inetd or systemd: a listener to adopt, or one client to serve.
Step adopt_socket(const ServeOptions& options, const StartupReport& report, Startup& startup) {
    const Inherited& inherited = startup.inherited;
    auto adopted = adopt_listener(inherited.fd, client_socket_options(options));
    if (adopted) {
        if (options.inetd) {
            report("--inetd expects fd 0 to be a connected client, but it is a listening socket (use --inetd-wait)");
            return 2;
        }
        if (startup.architecture->reuse_port) {
            report("--arch reuseport binds its own SO_REUSEPORT listeners and cannot use one passed by " +
                   inherited.from);
            return 2;
        }
        startup.listener = std::move(adopted).value();
        return std::nullopt;
    }
    auto client = adopt_connection(inherited.fd, client_socket_options(options));
    if (!client) {
        report("the socket passed by " + inherited.from + ": " + adopted.error());
        return 2;
    }
    if (options.inetd_wait) {
        report("--inetd-wait expects fd 0 to be the listening socket, but it is a connected client (use --inetd)");
        return 2;
    }
    if (startup.metrics) {
        report("--metrics has nothing to serve when " + inherited.from +
               " passes one client (Accept=yes): each process serves one client and exits");
        return 2;
    }
    startup.connection = std::move(client).value();
    return std::nullopt;
}

// The server's socket (adopted or bound), the stop signals, the shared counters, the user.
Step open_sockets(const ServeOptions& options, const StartupReport& report, Startup& startup) {
    raise_open_file_limit();
    if (auto installed = install_stop_signals(); !installed) {
        report(installed.error());
        return 1;
    }
    if (startup.inherited.fd >= 0) {
        if (const Step failed = adopt_socket(options, report, startup)) return failed;
    } else {
        if (auto addresses = resolve(options.host, options.port, true); !addresses) {
            report(addresses.error());
            return 2;
        }
        auto bound = open_listener(options.host, options.port, options.backlog, startup.architecture->reuse_port,
                                   client_socket_options(options));
        if (!bound) {
            report(bound.error());
            return 1;
        }
        startup.listener = std::move(bound).value();
    }
    auto tracker = create_shared_connection_tracker(Clock::now());
    if (!tracker) {
        report(tracker.error());
        return 1;
    }
    startup.tracker = *tracker;
    if (!options.trace.empty()) {
        if (auto usable = check_trace_file(options.trace); !usable) {
            report(usable.error());
            return 2;
        }
        // Before any fork(): prefork's children record into the same shared region.
        Log* log = startup.log.get();
        auto trace = TraceRecorder::create(options.trace_max_events, [log](const std::string& line) {
            log->server(LogLevel::warning, "trace_full", line);
        });
        if (!trace) {
            report(trace.error());
            return 1;
        }
        startup.trace = std::move(trace).value();
    }
    if (!options.user.empty()) {
        if (auto dropped = drop_privileges(options.user); !dropped) {
            report(dropped.error());
            return 1;
        }
    }
    return std::nullopt;
}

// Runs the architecture (or the one passed client) and says how serving ended.
int run_architecture(const ServerContext& context, Startup& startup, const RestartOnUsr2* restarter,
                     const StartupReport& report) {
    const ServeOptions& options = context.options;
    trace_process_name(context, "zen serve --arch " + std::string(startup.architecture->name));
    if (startup.connection) {
        // inetd nowait / systemd Accept=yes: one client, then exit.
        serve_one(std::move(*startup.connection), context);
        write_trace(context, "at exit");
        return 0;
    }
    Log& log = *startup.log;
    log.server(LogLevel::info, "starting", startup_line(options, *startup.architecture, startup.listener->display));
    if (startup.metrics) log.server(LogLevel::info, "metrics", "Metrics at " + startup.metrics->display());
    // The architecture announces "Listening at" and READY=1 itself, once its own set-up is done
    // (announce_serving(), which also turns /ready to 200); a failure before that is this
    // process's one line on stderr.
    const int code = startup.architecture->serve(*startup.listener, context);
    if (!serving_announced()) {
        if (code != 0) {
            const std::string cause = startup_failure();
            report(cause.empty() ? "--arch " + options.arch + " could not start serving (see the log)" : cause);
        }
        return code;
    }
    if (stop_signal_number() == SIGUSR2) {
        log.server(LogLevel::info, "stopped",
                   "Stopped on SIGUSR2: pid " + std::to_string(restarter->successor()) + " took over");
    } else {
        log_why_stopped(context);
    }
    log_counters(context, "at exit");
    write_trace(context, "at exit");
    return code;
}

// The operator's threads, then the serving: SIGUSR2's restarter, SIGUSR1/SIGHUP, the metrics.
int serve(const ServeOptions& options, Startup& startup, const StartupReport& report) {
    LiveTable live_table(std::move(startup.table));
    const ServerContext context{{options, live_table, *startup.log, *startup.tracker, startup.trace.get()}, options};
    // The signal threads, before any other thread: each blocks its signals in this thread, so the
    // threads started after leave them to it. The restarter comes first: its thread blocks every
    // signal, and OperatorSignals' thread inherits SIGUSR2 blocked from this one.
    // SIGUSR2 hands a listener over to a new process; inetd's wait mode owns its listener.
    std::optional<RestartOnUsr2> restarter;
    if (startup.listener && !options.inetd_wait) {
        restarter.emplace(context, startup.architecture->reuse_port ? -1 : startup.listener->fd.get());
    }
    const OperatorSignals operator_signals(context);
    if (startup.metrics) startup.metrics->start(*startup.tracker);  // before any fork(): see its header
    return run_architecture(context, startup, restarter ? &*restarter : nullptr, report);
}

}  // namespace

int run_serve(const ServeOptions& given) {
    const ServeOptions options = with_launch_defaults(given);
    const StartupReport report(options);
    Startup startup;
    for (const auto step : {check_inputs, open_log_and_metrics, open_sockets}) {
        if (const Step failed = step(options, report, startup)) return *failed;
    }
    return serve(options, startup, report);
}

}  // namespace zen
