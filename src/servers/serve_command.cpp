#include "servers/serve_command.hpp"

#include <CLI/CLI.hpp>
#include <cmath>
#include <csignal>
#include <iostream>
#include <map>

#include "net/signals.hpp"

namespace zen {

namespace {

constexpr std::size_t max_limit_bytes = std::size_t{1} << 30;

// Seconds on the command line (fractions allowed), milliseconds inside; 0 means "never".
CLI::Option* add_seconds_option(CLI::App& app, const std::string& name, std::chrono::milliseconds& target,
                                const std::string& description) {
    return app
        .add_option_function<double>(
            name, [&target](double seconds) { target = std::chrono::milliseconds(std::llround(seconds * 1000)); },
            description)
        ->type_name("SECONDS")
        ->check(CLI::Range(0.0, 31'536'000.0))
        ->default_str(std::to_string(target.count() / 1000));
}

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
        ->check(CLI::Range(0, 65535))
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
                       "close a connection silent this long (0: never)");
    add_seconds_option(*serve, "--question-timeout", options.question_timeout,
                       "close a connection whose started question is not finished this long (0: never)");
    serve->add_flag("-q,--quiet", options.log.quiet, "do not log each connection");
    const std::map<std::string, LogFormat> formats{{"text", LogFormat::text}, {"json", LogFormat::json}};
    serve->add_option("--log-format", options.log.format, "text (the book's lines) or json (one object a line)")
        ->transform(CLI::CheckedTransformer(formats, CLI::ignore_case))
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
    if (auto installed = install_stop_signals(); !installed) {
        fail(installed.error());
        return 1;
    }
    auto listener = open_listener(options.host, options.port, options.backlog);
    if (!listener) {
        fail(listener.error());
        return 1;
    }

    Log log(options.log);
    const ServerContext context{options, table, log};
    log.server(LogLevel::info, "listening", "Listening at " + listener->display);
    const int code = architecture->serve(*listener, context);
    if (stop_requested()) {
        log.server(LogLevel::info, "stopped",
                   std::string("Stopped on ") + (stop_signal_number() == SIGINT ? "SIGINT" : "SIGTERM"));
    }
    return code;
}

}  // namespace zen
