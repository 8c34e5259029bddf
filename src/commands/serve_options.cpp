// `zen serve`'s command line: every option, its check and its help (the table of DESIGN §4).
#include <CLI/CLI.hpp>

#include "base/cli.hpp"
#include "commands/serve.hpp"
#include "servers/registry.hpp"

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

CLI::Validator cidr_check() {
    return CLI::Validator(
        [](std::string& text) -> std::string {
            if (Cidr::parse(text)) return {};
            const std::size_t slash = text.find('/');
            if (slash != std::string::npos && Cidr::parse(text.substr(0, slash))) {
                const std::string width = text.find(':') == std::string::npos ? "32" : "128";
                return "expected a prefix length from 0 to " + width + " after the '/', got '" + text + "'";
            }
            return "expected an IP address or CIDR block (e.g. 127.0.0.2/32, ::1/128, all), got '" + text + "'";
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
        ->transform(port_number(0))
        ->capture_default_str();

    std::vector<std::string> names;
    for (const Architecture& architecture : architectures()) names.emplace_back(architecture.name);
    serve->add_option("--arch", options.arch, architecture_help())
        ->check(one_of(names))
        ->capture_default_str();

    serve->add_option("--backlog", options.backlog, "length of the kernel's queue of connections not yet accepted")
        ->transform(number_range(1, 65535))
        ->capture_default_str();
    serve->add_option("--aphorisms", options.aphorisms_path,
                      "load the question/answer table from FILE (one \"QUESTION? ANSWER.\" a line)")
        ->type_name("FILE");
    serve->add_option("--max-question", options.limits.max_question,
                      "longest question in bytes; a longer one gets 'Error: question too long.' and a close")
        ->transform(number_range(std::size_t{1}, max_limit_bytes))
        ->capture_default_str();
    serve->add_option("--max-connections", options.max_connections,
                      "open connections at most; the next client gets 'Error: server busy.' and a close "
                      "(0: no limit but the open-file limit)")
        ->transform(number_range(0, 1 << 24))
        ->capture_default_str();
    serve->add_option("--max-pending", options.limits.max_pending,
                      "answer bytes queued for a client before the server stops reading from it")
        ->transform(number_range(std::size_t{1}, max_limit_bytes))
        ->capture_default_str();
    add_seconds_option(*serve, "--idle-timeout", options.idle_timeout,
                       "close a connection silent this long (0: never)", 0);
    add_seconds_option(*serve, "--send-timeout", options.send_timeout,
                       "close a connection whose answers wait this long with none taken, or whose answers sent stay this "
                       "long unacknowledged (TCP_USER_TIMEOUT) (0: only --idle-timeout)", 0);
    serve
        ->add_option_function<int>(
            "--tcp-keepalive",
            [&options](int seconds) { options.tcp_keepalive = std::chrono::seconds(seconds); },
            "probe a connection silent this long and close it when 3 probes, a third of this apart, go "
            "unanswered: a peer that vanished gives back its slot (0: off; whole seconds)")
        ->type_name("SECONDS")
        ->default_str(std::to_string(options.tcp_keepalive.count()))
        ->transform(number_range(0, 32767));
    add_seconds_option(*serve, "--question-timeout", options.question_timeout,
                       "close a connection whose started question is not finished this long (0: never)", 0);
    serve->add_option("--workers", options.workers,
                      "threads (threaded), processes (prefork) or event loops (reuseport); "
                      "default 4, reuseport one per CPU it may run on (taskset, cpusets)")
        ->transform(number_range(1, 1024));
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
        ->check(existing_file());
    serve->add_option("--hosts-deny", options.access.hosts_deny, "hosts_access(5) deny table")
        ->type_name("FILE")
        ->check(existing_file());
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
    auto* trace = serve->add_option("--trace", options.trace,
                                    "record what the server does (each connection, answer, timeout, backpressure, "
                                    "drain) and write it to FILE at exit and on SIGUSR1, in the Trace Event Format "
                                    "that Perfetto and chrome://tracing open; %p in FILE is the pid")
                      ->type_name("FILE");
    serve->add_option("--trace-max-events", options.trace_max_events,
                      "stop recording (with one log line) after this many events; 128 bytes each at most")
        ->transform(number_range(std::size_t{1}, TraceRecorder::largest_max_events))
        ->capture_default_str()
        ->needs(trace);
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
        ->check(one_of({"text", "json"}))
        ->default_str("text");
    serve->footer(
        "Signals: SIGTERM/SIGINT answer what has arrived, close and exit within --drain-timeout; SIGQUIT stops "
        "accepting and lets conversations finish; SIGHUP never stops the server: it reopens --log-file (after "
        "logrotate renamed it) and re-reads --aphorisms for each conversation's next question, keeping the old "
        "table if the new file is bad; SIGUSR1 logs the counters (and writes --trace's file); SIGUSR2 starts a new zen from the same path with "
        "the same arguments, hands it the listening socket (LISTEN_FDS) and, once it is ready (READY=1), stops as "
        "on SIGTERM; a new process that fails leaves this one serving.");
    return serve;
}

}  // namespace zen
