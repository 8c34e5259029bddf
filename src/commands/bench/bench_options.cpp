// `zen bench`'s command line: every option, its check and its help.
#include <CLI/CLI.hpp>
#include <cmath>
#include <string>

#include "base/cli.hpp"
#include "base/trace.hpp"
#include "commands/bench/bench_command.hpp"

namespace zen {

CLI::App* add_bench_command(CLI::App& zen, BenchOptions& options) {
    CLI::App* bench = zen.add_subcommand("bench", "Load a Zen server (or any suffix-delimited service) and report "
                                                  "throughput, latency percentiles and errors");
    bench->footer("SIGINT or SIGTERM ends the window early and prints the partial result (exit status as for a "
                  "whole run); a second one stops waiting for answers still in flight.");
    bench->add_option("host", options.host, "server address: an IP address or a name")->capture_default_str();
    bench->add_option("-p,--port", options.port, "TCP port")->transform(port_number(1))->capture_default_str();
    bench->add_option("-c,--connections", options.connections, "connections held open")
        ->transform(number_range(1, 1'000'000))
        ->capture_default_str();
    bench->add_option("-t,--threads", options.threads, "load threads, each with its own event loop")
        ->transform(number_range(1, 256))
        ->capture_default_str();
    add_seconds_option(*bench, "-d,--duration", options.duration, "how long to measure (with -n: at most)", 0.01);
    bench->add_option("-n,--count", options.count,
                      "ask this many questions in all after the warm-up, then end once each is answered or lost "
                      "(-d still bounds the run)")
        ->transform(number_range(std::uint64_t{1}, std::uint64_t{1'000'000'000'000}));
    add_seconds_option(*bench, "-w,--warmup", options.warmup, "load before measuring; its answers are not counted",
                       0);
    bench->add_option("-P,--pipeline", options.depth, "questions in flight per connection")
        ->transform(number_range(1, 65'536))
        ->capture_default_str();
    bench->add_option("--connect-rate", options.connect_rate,
                      "open the connections at this many per second at the start instead of all at once (a ramp; "
                      "cover it with -w)")
        ->transform(number_range(1.0, 1e9));
    bench->add_option("--reconnect", options.reconnect_every,
                      "close each connection and open a new one every N questions, to load the accept path "
                      "(the book's client asks 3)")
        ->transform(number_range(std::uint64_t{1}, std::uint64_t{1'000'000'000}));
    bench->add_option("-r,--rate", options.rate,
                      "open loop: this many questions per second in all, latency counted from when each was due; "
                      "the schedule stops at the end of -d and the report says whether the server kept up "
                      "(default: closed loop, ask again as soon as an answer comes)")
        ->check(CLI::Validator(
            [](const std::string& text) -> std::string {
                double value = 0;
                std::size_t used = 0;
                try {
                    value = std::stod(text, &used);
                } catch (const std::exception&) {
                    used = 0;
                }
                if (used != text.size() || used == 0 || !std::isfinite(value) || value <= 0 || value > 1e9)
                    return "expected questions per second above 0 and at most 1e9 (leave -r out for a closed loop), "
                           "got '" + text + "'";
                return {};
            },
            "RATE"));
    bench->add_option("--question", options.questions,
                      "a question to send instead of the Zen table (repeatable; escapes \\r \\n \\t \\0 \\\\ \\xHH)");
    bench->add_option("--answer", options.answers, "the answer expected to the --question in the same place");
    bench->add_option("--suffix", options.suffix,
                      "the byte that ends an answer (default: '.' for Zen, else the last byte of the answers)");
    add_seconds_option(*bench, "--timeout", options.timeout,
                       "an answer, a connect or a queued question later than this is an error", 0.001);
    bench->add_flag("--json", options.json, "print one JSON object instead of the text report");
    bench->add_option("--csv", options.csv_path, "also write one CSV row per cycle to this file");
    bench->add_option("--hdr-file", options.hdr_path,
                      "also write the latency spectrum in HdrHistogram's .hgrm format to this file (milliseconds, "
                      "corrected for coordinated omission) and the uncorrected one beside it (PATH.uncorrected.hgrm)");
    auto* trace = bench->add_option("--trace", options.trace_path,
                                    "also write each connect and each question (sent to answered) to FILE in the Trace "
                                    "Event Format, on the clock of `zen serve --trace`: the two files merge by "
                                    "concatenating their events (bench/merge_traces.py)")
                      ->type_name("FILE");
    bench->add_option("--trace-max-events", options.trace_max_events,
                      "stop recording (with one line on stderr) after this many events; 128 bytes each at most")
        ->transform(number_range(std::size_t{1}, TraceRecorder::largest_max_events))
        ->capture_default_str()
        ->needs(trace);
    bench->add_option("--sweep", options.sweep,
                      "run one cycle per connection count, e.g. 1,2,3,5,7,10,13,16,20 (overrides -c)")
        ->delimiter(',')
        ->transform(number_range(1, 1'000'000));
    bench->add_option("--server-pid", options.server_pids,
                      "report this process's CPU time per answer, its threads and children included (repeatable)")
        ->transform(number_range(1, 1 << 30));
    return bench;
}

}  // namespace zen
