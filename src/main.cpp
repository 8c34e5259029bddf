// zen: subcommand dispatch. Each subcommand lives in its own module.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <iostream>

#include "base/build_info.hpp"
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

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::string where = "zen";
        for (const CLI::App* sub : app.get_subcommands()) where += " " + sub->get_name();
        std::string message = e.what();
        std::replace(message.begin(), message.end(), '\n', ' ');
        if (app.get_subcommands().empty()) {
            if (argc > 1 && argv[1][0] != '-') {
                message = std::string("unknown subcommand '") + argv[1] + "': choose serve, client, bench, streamer or blocks";
            } else if (e.get_name() == "RequiredError") {
                message = "a subcommand is required: serve, client, bench, streamer or blocks";
            }
        }
        std::cerr << where << ": " << message << " (see " << where << " --help)\n";
        return 2;
    }

    if (serve->parsed()) return zen::run_serve(serve_options);
    if (client->parsed()) return zen::run_client(client_options);
    if (streamer->parsed()) return zen::run_streamer(streamer_options);
    if (blocks->parsed()) return zen::run_blocks(blocks_options);
    if (bench->parsed()) return zen::run_bench(bench_options);
    return 2;
}
