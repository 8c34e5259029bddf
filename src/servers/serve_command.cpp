#include "servers/serve_command.hpp"

#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <cmath>
#include <csignal>
#include <iostream>

#include "base/cli.hpp"
#include "net/signals.hpp"
#include "servers/connection_tracker.hpp"

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

}  // namespace

CLI::App* add_serve_command(CLI::App& zen, ServeOptions& options) {
    CLI::App* serve = zen.add_subcommand("serve", "Run the Zen-of-Python server (chapter 7)");
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
    serve->add_option("--max-pending", options.limits.max_pending,
                      "answer bytes queued for a client before the server stops reading from it")
        ->check(CLI::Range(std::size_t{1}, max_limit_bytes))
        ->capture_default_str();
    add_seconds_option(*serve, "--idle-timeout", options.idle_timeout,
                       "close a connection silent this long (0: never)", 0);
    add_seconds_option(*serve, "--question-timeout", options.question_timeout,
                       "close a connection whose started question is not finished this long (0: never)", 0);
    serve->add_option("--workers", options.workers,
                      "threads (threaded), processes (prefork) or event loops (reuseport); "
                      "default 4, reuseport one per core")
        ->check(CLI::Range(1, 1024));
    add_seconds_option(*serve, "--delay", options.delay,
                       "simulated work per answer that blocks the answering thread (the book's time.sleep)", 0);
    add_seconds_option(*serve, "--wait", options.wait,
                       "simulated backend wait per answer; blocking architectures sleep, as for --delay", 0);
    add_seconds_option(*serve, "--exit-idle", options.exit_idle,
                       "exit 0 once no connection has been open this long (0: never)", 0);
    add_seconds_option(*serve, "--drain-timeout", options.drain_timeout,
                       "after SIGTERM/SIGINT, time to answer what has arrived and close before stopping hard", 0);
    serve->add_flag("-q,--quiet", options.log.quiet, "do not log each connection");
    serve
        ->add_option_function<std::string>(
            "--log-format",
            [&options](const std::string& format) {
                options.log.format = format == "json" ? LogFormat::json : LogFormat::text;
            },
            "text (the book's lines) or json (one object a line)")
        ->check(CLI::IsMember({"text", "json"}))
        ->default_str("text");
    return serve;
}

int run_serve(const ServeOptions& options) {
    AphorismTable table = AphorismTable::book_defaults();
    if (!options.aphorisms_path.empty()) {
        auto loaded = AphorismTable::load_file(options.aphorisms_path);
        if (!loaded) {
            fail(loaded.error());
            return 2;
        }
        table = std::move(loaded).value();
    }
    if (table.longest_question() > options.limits.max_question) {
        fail("--max-question " + std::to_string(options.limits.max_question) +
             " is shorter than the longest aphorism (" + std::to_string(table.longest_question()) + " bytes)");
        return 2;
    }
    const Architecture* architecture = find_architecture(options.arch);
    if (architecture == nullptr) {
        fail("unknown architecture '" + options.arch + "'");
        return 2;
    }
    if (auto addresses = resolve(options.host, options.port, true); !addresses) {
        fail(addresses.error());
        return 2;
    }
    // A server's clients are its file descriptors: use every one the hard limit allows.
    if (rlimit files{}; ::getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < files.rlim_max) {
        files.rlim_cur = files.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &files);
    }
    if (auto installed = install_stop_signals(); !installed) {
        fail(installed.error());
        return 1;
    }
    auto listener = open_listener(options.host, options.port, options.backlog, architecture->reuse_port);
    if (!listener) {
        fail(listener.error());
        return 1;
    }

    auto tracker = create_shared_connection_tracker();
    if (!tracker) {
        fail(tracker.error());
        return 1;
    }

    Log log(options.log);
    const ServerContext context{options, table, log, **tracker};
    log.server(LogLevel::info, "listening", "Listening at " + listener->display);
    const int code = architecture->serve(*listener, context);
    if (stop_requested()) {
        log.server(LogLevel::info, "stopped",
                   std::string("Stopped on ") + (stop_signal_number() == SIGINT ? "SIGINT" : "SIGTERM"));
    }
    return code;
}

}  // namespace zen
