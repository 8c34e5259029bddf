// zen: subcommand dispatch. Each subcommand lives in its own module.
#include <CLI/CLI.hpp>
#include <optional>

#include "base/build_info.hpp"
#include "base/cli.hpp"
#include "runtime/restart.hpp"
#include "commands/serve.hpp"
#include "commands/bench/bench_command.hpp"
#include "commands/blocks.hpp"
#include "commands/client.hpp"
#include "commands/streamer.hpp"


int main(int argc, char** argv) {
    zen::remember_command_line(argc, argv);  // what SIGUSR2 runs again (src/runtime/restart.hpp)
    CLI::App app{"zen: the Zen-of-Python service of Foundations of Python Network Programming, "
                 "chapter 7, in every server architecture"};
    app.name("zen");
    // Version, commit, compiler and what io_uring offers here: what a bug report needs.
    app.set_version_flag("--version", [] {
        std::string report = zen::version_report();
        if (!report.empty() && report.back() == '\n') report.pop_back();
        return report;
    });
    app.require_subcommand(1);

    zen::ServeOptions serve_options;
    zen::ClientOptions client_options;
    zen::StreamerOptions streamer_options;
    zen::BlocksOptions blocks_options;
    zen::BenchOptions bench_options;
    CLI::App* serve = zen::add_serve_command(app, serve_options);
    CLI::App* client = zen::add_client_command(app, client_options);
    CLI::App* streamer = zen::add_streamer_command(app, streamer_options);
    CLI::App* blocks = zen::add_blocks_command(app, blocks_options);
    CLI::App* bench = zen::add_bench_command(app, bench_options);

    // Help and version exit 0; a usage error is one line in zen's words and exit 2 (base/cli.hpp).
    if (const std::optional<int> status = zen::parse_command_line(app, argc, argv)) return *status;

    if (serve->parsed()) return zen::run_serve(serve_options);
    if (client->parsed()) return zen::run_client(client_options);
    if (streamer->parsed()) return zen::run_streamer(streamer_options);
    if (blocks->parsed()) return zen::run_blocks(blocks_options);
    if (bench->parsed()) return zen::run_bench(bench_options);
    return 2;
}
