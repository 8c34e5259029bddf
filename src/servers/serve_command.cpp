#include "servers/serve_command.hpp"

#include <syslog.h>
#include <fcntl.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <optional>

#include "base/build_info.hpp"
#include "base/cli.hpp"
#include "base/resources.hpp"
#include "net/io.hpp"
#include "net/privileges.hpp"
#include "net/signals.hpp"
#include "conn/connection_tracker.hpp"
#include "servers/blocking.hpp"
#include "servers/lifecycle.hpp"
#include "servers/readiness.hpp"
#include "metrics/endpoint.hpp"
#include "servers/restart.hpp"

namespace zen {

namespace {

constexpr std::size_t max_limit_bytes = std::size_t{1} << 30;

std::string architecture_help() {
    std::string text = "server architecture:";
    for (const Architecture& architecture : architectures()) {
        text += "\n  " + std::string(architecture.name) + ": " + std::string(architecture.model);
    }
    return text;
}

void fail(std::string_view message) { std::cerr << "zen serve: " << message << '\n'; }

CLI::Validator cidr_check() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            auto cidr = Cidr::parse(text);
            return cidr ? std::string() : cidr.error();
        },
        "CIDR");
}

void add_cidrs(const std::vector<std::string>& blocks, std::vector<Cidr>& rules) {
    for (const std::string& block : blocks) {
        if (auto cidr = Cidr::parse(block)) rules.push_back(*cidr);  // checked by cidr_check()
    }
}

}  // namespace

CLI::App* add_serve_command(CLI::App& zen, ServeOptions& options) {
    CLI::App* serve = zen.add_subcommand("serve", "Run the Zen-of-Python server (chapter 7)");
    serve->footer(
        "Start-up: every input (options, --aphorisms, --hosts-allow/--hosts-deny, --log-file) is checked "
        "before the socket is bound; the log says \"Listening at ...\" and systemd hears READY=1 only "
        "once the architecture has set itself up.\n"
        "Exit status: 0 stopped by SIGTERM, SIGINT, SIGQUIT or --exit-idle; 1 a failure, at start-up "
        "(one line on stderr) or while serving; 2 a usage error or an unusable input (one line on stderr).");
    serve->add_option("host", options.host,
                      "address to listen on: an IP address, a name, or '' for every interface "
                      "(IPv6 and IPv4)")
        ->capture_default_str();
    serve->add_option("-p,--port", options.port, "TCP port (0 picks a free one)")
        ->check(port_number(0))
        ->capture_default_str();

    std::vector<std::string> names;
    for (const Architecture& architecture : architectures()) names.emplace_back(architecture.name);
    serve->add_option("--arch", options.arch, architecture_help())
        ->check(CLI::IsMember(names))
        ->capture_default_str();

    serve->add_option("--backlog", options.backlog, "length of the kernel's queue of connections not yet accepted")
        ->check(CLI::Range(1, 65535))
        ->capture_default_str();
    serve->add_option("--aphorisms", options.aphorisms_path,
                      "load the question/answer table from FILE (one \"QUESTION? ANSWER.\" a line)")
        ->type_name("FILE");
    serve->add_option("--max-question", options.limits.max_question,
                      "longest question in bytes; a longer one gets 'Error: question too long.' and a close")
        ->check(CLI::Range(std::size_t{1}, max_limit_bytes))
        ->capture_default_str();
    serve->add_option("--max-connections", options.max_connections,
                      "open connections at most; the next client gets 'Error: server busy.' and a close "
                      "(0: no limit but the open-file limit)")
        ->check(CLI::Range(0, 1 << 24))
        ->capture_default_str();
    serve->add_option("--max-pending", options.limits.max_pending,
                      "answer bytes queued for a client before the server stops reading from it")
        ->check(CLI::Range(std::size_t{1}, max_limit_bytes))
        ->capture_default_str();
    add_seconds_option(*serve, "--idle-timeout", options.idle_timeout,
                       "close a connection silent this long (0: never)", 0);
    add_seconds_option(*serve, "--send-timeout", options.send_timeout,
                       "close a connection whose answers wait this long with none taken (0: only --idle-timeout)", 0);
    add_seconds_option(*serve, "--question-timeout", options.question_timeout,
                       "close a connection whose started question is not finished this long (0: never)", 0);
    serve->add_option("--workers", options.workers,
                      "threads (threaded), processes (prefork) or event loops (reuseport); "
                      "default 4, reuseport one per CPU it may run on (taskset, cpusets)")
        ->check(CLI::Range(1, 1024));
    serve->add_flag("--no-multishot", options.no_multishot,
                    "uring only: one-shot accepts and receives instead of multishot ones, the path kernels before "
                    "5.19 (accept) and 6.0 (receive) take by themselves; to test that path or sidestep a kernel bug");
    add_seconds_option(*serve, "--delay", options.delay,
                       "simulated work per answer that blocks the answering thread (the book's time.sleep)", 0);
    add_seconds_option(*serve, "--wait", options.wait,
                       "simulated backend wait per answer, without blocking the thread where the architecture allows "
                       "(a blocking one holds its client's thread until the answer is due)", 0);
    add_seconds_option(*serve, "--exit-idle", options.exit_idle,
                       "exit 0 once no connection has been open this long (0: never; --inetd-wait: 8)", 0)
        ->each([&options](const std::string&) { options.exit_idle_given = true; });
    add_seconds_option(*serve, "--drain-timeout", options.drain_timeout,
                       "after SIGTERM/SIGINT, time to answer what has arrived and close before stopping hard", 0);
    auto* inetd = serve->add_flag("--inetd", options.inetd,
                                  "inetd 'nowait': fd 0 is one connected client; serve it and exit "
                                  "(logs go to --log-file or syslog, never to fds 0-2)");
    serve->add_flag("--inetd-wait", options.inetd_wait,
                    "inetd 'wait': fd 0 is the listening socket; exit after --exit-idle (8 s) with no client")
        ->excludes(inetd);
    serve
        ->add_option_function<std::vector<std::string>>(
            "--allow", [&options](const std::vector<std::string>& blocks) { add_cidrs(blocks, options.access.allow); },
            "admit clients in this CIDR block (IPv4 or IPv6, or 'all'), before any --deny; repeatable")
        ->type_name("CIDR")
        ->check(cidr_check());
    serve
        ->add_option_function<std::vector<std::string>>(
            "--deny", [&options](const std::vector<std::string>& blocks) { add_cidrs(blocks, options.access.deny); },
            "refuse clients in this CIDR block (or 'all') that no --allow admitted; repeatable")
        ->type_name("CIDR")
        ->check(cidr_check());
    auto* proxy = serve->add_flag("--proxy-protocol", options.proxy.enabled,
                                  "expect a PROXY protocol v1 or v2 header (haproxy send-proxy[-v2]) from each "
                                  "--trusted-proxy; logs and access rules then see the real client. Other clients "
                                  "are served directly, and refused if they send a header");
    serve
        ->add_option_function<std::vector<std::string>>(
            "--trusted-proxy",
            [&options](const std::vector<std::string>& blocks) { add_cidrs(blocks, options.proxy.trusted); },
            "a proxy in this CIDR block may send a PROXY header (required with --proxy-protocol); repeatable")
        ->type_name("CIDR")
        ->check(cidr_check())
        ->needs(proxy);
    add_seconds_option(*serve, "--proxy-header-timeout", options.proxy.header_timeout,
                       "a trusted proxy's connection without a whole header by then is closed", 0.001)
        ->needs(proxy);
    serve->add_option("--hosts-allow", options.access.hosts_allow,
                      "hosts_access(5) allow table, checked with libwrap as tcpd does")
        ->type_name("FILE")
        ->check(CLI::ExistingFile);
    serve->add_option("--hosts-deny", options.access.hosts_deny, "hosts_access(5) deny table")
        ->type_name("FILE")
        ->check(CLI::ExistingFile);
    serve->add_option("--daemon-name", options.access.daemon_name, "the daemon name the hosts tables match")
        ->capture_default_str();
    serve->add_option("--metrics", options.metrics,
                      "serve GET /metrics (Prometheus text format), /ready (200 while accepting clients, 503 once "
                      "stopping) and /live over HTTP at HOST:PORT, e.g. 127.0.0.1:9100 (off by default)")
        ->type_name("HOST:PORT");
    serve->add_option("--user", options.user, "switch to this user (and its groups) once the socket is ready")
        ->type_name("NAME");
    serve->add_option("--log-file", options.log.file,
                      "append the log to FILE instead of stdout (opened before the socket is bound: "
                      "one that cannot be is exit 2)")->type_name("FILE");
    serve->add_flag("--syslog", options.log.syslog, "send the log to syslog instead of stdout");
    serve->add_flag("-q,--quiet", options.log.quiet, "do not log each connection");
    serve->add_flag("--log-timestamps", options.log.timestamps,
                    "begin each text log line with its UTC time, ISO 8601 with milliseconds "
                    "(JSON lines always carry \"time\")");
    serve
        ->add_option_function<std::string>(
            "--log-format",
            [&options](const std::string& format) {
                options.log.format = format == "json" ? LogFormat::json : LogFormat::text;
            },
            "text (the book's lines) or json (one object a line)")
        ->check(CLI::IsMember({"text", "json"}))
        ->default_str("text");
    serve->footer(
        "Signals: SIGTERM/SIGINT answer what has arrived, close and exit within --drain-timeout; SIGQUIT stops "
        "accepting and lets conversations finish; SIGHUP never stops the server: it reopens --log-file (after "
        "logrotate renamed it) and re-reads --aphorisms for each conversation's next question, keeping the old "
        "table if the new file is bad; SIGUSR1 logs the counters; SIGUSR2 starts a new zen from the same path with "
        "the same arguments, hands it the listening socket (LISTEN_FDS) and, once it is ready (READY=1), stops as "
        "on SIGTERM; a new process that fails leaves this one serving.");
    return serve;
}

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

// The server's first log line: what runs, where, and with which limits.
std::string startup_line(const ServeOptions& options, const Architecture& architecture, const std::string& where) {
    const auto seconds = [](std::chrono::milliseconds limit) {
        return limit.count() > 0 ? duration_text(limit) : std::string("off");
    };
    return "zen " + std::string(zen_version()) + " (commit " + std::string(zen_commit()) + ") --arch " +
           std::string(architecture.name) + " at " + where +
           ": max-connections " + (options.max_connections > 0 ? std::to_string(options.max_connections) : "unlimited") +
           ", idle-timeout " + seconds(options.idle_timeout) + ", question-timeout " + seconds(options.question_timeout) +
           ", send-timeout " + seconds(options.send_timeout) + ", max-question " +
           std::to_string(options.limits.max_question) + " bytes, max-pending " +
           std::to_string(options.limits.max_pending) + " bytes, workers " +
           (options.workers > 0 ? std::to_string(options.workers) : "default") + ", drain-timeout " +
           seconds(options.drain_timeout) + (options.exit_idle.count() > 0 ? ", exit-idle " + seconds(options.exit_idle) : "");
}

}  // namespace

int run_serve(const ServeOptions& given) {
    ServeOptions options = given;
    const bool stdio_is_socket = options.inetd || options.inetd_wait;
    if (stdio_is_socket && options.log.file.empty()) options.log.syslog = true;  // fds 0-2 are the client
    if (options.inetd_wait && !options.exit_idle_given) options.exit_idle = std::chrono::seconds(8);
    const auto report = [&](std::string_view message) {
        if (!stdio_is_socket) {
            fail(message);
        } else if (options.log.syslog) {
            ::syslog(LOG_DAEMON | LOG_ERR, "zen serve: %.*s", static_cast<int>(message.size()), message.data());
        } else if (FILE* file = std::fopen(options.log.file.c_str(), "a"); file != nullptr) {
            std::fprintf(file, "zen serve: %.*s\n", static_cast<int>(message.size()), message.data());
            std::fclose(file);
        }
    };

    if (options.proxy.enabled && options.proxy.trusted.empty()) {
        report("--proxy-protocol needs --trusted-proxy CIDR: a header is believed only from a known proxy");
        return 2;
    }

    if (auto tables = check_hosts_tables(options.access); !tables) {
        report(tables.error());
        return 2;
    }

    AphorismTable table = AphorismTable::book_defaults();
    if (!options.aphorisms_path.empty()) {
        // Without a limit here: the check below says which option is in the way.
        auto loaded = AphorismTable::load_file(options.aphorisms_path);
        if (!loaded) {
            report(loaded.error());
            return 2;
        }
        table = std::move(loaded).value();
    }
    if (table.longest_question() > options.limits.max_question) {
        report("--max-question " + std::to_string(options.limits.max_question) +
               " is shorter than the longest aphorism (" + std::to_string(table.longest_question()) + " bytes)");
        return 2;
    }
    const Architecture* architecture = find_architecture(options.arch);
    if (architecture == nullptr) {
        report("unknown architecture '" + options.arch + "'");
        return 2;
    }
    if (options.no_multishot && architecture->name != "uring") {
        report("--no-multishot applies to --arch uring only");
        return 2;
    }
    if (!options.log.file.empty()) {
        if (auto usable = check_log_file(options.log.file); !usable) {
            report(usable.error());
            return 2;
        }
    }
    std::unique_ptr<Log> log;
    try {
        log = std::make_unique<Log>(options.log);
    } catch (const std::exception& e) {
        report(std::string("cannot open the log: ") + e.what());
        return 2;
    }
    auto inherited = inherited_socket(options);
    if (!inherited) {
        report(inherited.error());
        return 2;
    }

    if (options.inetd && !options.metrics.empty()) {
        report("--metrics has nothing to serve with --inetd: each process serves one client and exits");
        return 2;
    }
    // Bound before the server's own socket: an unusable address stops zen before it listens.
    std::unique_ptr<MetricsEndpoint> metrics;
    if (!options.metrics.empty()) {
        auto opened = MetricsEndpoint::open(options.metrics, std::string(architecture->name));
        if (!opened) {
            report(opened.error());
            return 2;
        }
        metrics = std::move(opened).value();
    }

    raise_open_file_limit();
    if (auto installed = install_stop_signals(); !installed) {
        report(installed.error());
        return 1;
    }

    std::optional<Listener> listener;
    std::optional<AcceptedClient> connection;
    if (inherited->fd >= 0) {
        auto adopted = adopt_listener(inherited->fd);
        if (adopted) {
            if (options.inetd) {
                report("--inetd expects fd 0 to be a connected client, but it is a listening socket (use --inetd-wait)");
                return 2;
            }
            if (architecture->reuse_port) {
                report("--arch reuseport binds its own SO_REUSEPORT listeners and cannot use one passed by " +
                       inherited->from);
                return 2;
            }
            listener = std::move(adopted).value();
        } else {
            auto client = adopt_connection(inherited->fd);
            if (!client) {
                report("the socket passed by " + inherited->from + ": " + adopted.error());
                return 2;
            }
            if (options.inetd_wait) {
                report("--inetd-wait expects fd 0 to be the listening socket, but it is a connected client (use --inetd)");
                return 2;
            }
            if (metrics) {
                report("--metrics has nothing to serve when " + inherited->from +
                       " passes one client (Accept=yes): each process serves one client and exits");
                return 2;
            }
            connection = std::move(client).value();
        }
    } else {
        if (auto addresses = resolve(options.host, options.port, true); !addresses) {
            report(addresses.error());
            return 2;
        }
        auto bound = open_listener(options.host, options.port, options.backlog, architecture->reuse_port);
        if (!bound) {
            report(bound.error());
            return 1;
        }
        listener = std::move(bound).value();
    }

    auto tracker = create_shared_connection_tracker();
    if (!tracker) {
        report(tracker.error());
        return 1;
    }
    if (!options.user.empty()) {
        if (auto dropped = drop_privileges(options.user); !dropped) {
            report(dropped.error());
            return 1;
        }
    }
    LiveTable live_table(std::move(table));
    const ServerContext context{{options, live_table, *log, **tracker}, options};
    // The signal threads, before any other thread: each blocks its signals in this thread, so the
    // threads started after leave them to it. The restarter comes first: its thread blocks every
    // signal, and OperatorSignals' thread inherits SIGUSR2 blocked from this one.
    // SIGUSR2 hands a listener over to a new process; inetd's wait mode owns its listener.
    std::optional<RestartOnUsr2> restarter;
    if (listener && !options.inetd_wait) {
        restarter.emplace(context, architecture->reuse_port ? -1 : listener->fd.get());
    }
    const OperatorSignals operator_signals(context);
    if (metrics) metrics->start(**tracker);  // before any fork(): see its header

    if (connection) {
        // inetd nowait / systemd Accept=yes: one client, then exit.
        serve_one(std::move(*connection), context);
        return 0;
    }
    log->server(LogLevel::info, "starting", startup_line(options, *architecture, listener->display));
    if (metrics) log->server(LogLevel::info, "metrics", "Metrics at " + metrics->display());
    // The architecture announces "Listening at" and READY=1 itself, once its own set-up is done
    // (announce_serving(), which also turns /ready to 200); a failure before that is this
    // process's one line on stderr.
    const int code = architecture->serve(*listener, context);
    if (!serving_announced()) {
        if (code != 0) {
            const std::string cause = startup_failure();
            report(cause.empty() ? "--arch " + options.arch + " could not start serving (see the log)" : cause);
        }
        return code;
    }
    if (stop_signal_number() == SIGUSR2) {
        log->server(LogLevel::info, "stopped",
                    "Stopped on SIGUSR2: pid " + std::to_string(restarter->successor()) + " took over");
    } else {
        log_why_stopped(context);
    }
    log_counters(context, "at exit");
    return code;
}

}  // namespace zen
