// `zen bench`: a load generator for the Zen protocol, or any protocol whose answers end with one
// byte. Closed or open loop (saying whether the server kept up), pipelined, several threads, a
// connection ramp, short conversations (--reconnect), a fixed count (-n), answers checked, latency
// percentiles corrected for coordinated omission, a concurrency sweep; text, JSON (with a
// per-second series and a manifest), CSV and .hgrm output; SIGINT/SIGTERM end it with a partial
// result.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "base/trace.hpp"

namespace CLI {
class App;
}

namespace zen {

struct BenchOptions {
    std::string host = "127.0.0.1";
    std::uint16_t port = 1060;
    int connections = 10;
    int threads = 1;
    std::chrono::milliseconds duration{10'000};
    std::chrono::milliseconds warmup{1'000};
    std::chrono::milliseconds timeout{2'000};
    int depth = 1;
    double rate = 0;  // total questions per second; 0 = closed loop
    double connect_rate = 0;  // new connections per second at the start; 0 = all at once
    std::uint64_t reconnect_every = 0;  // --reconnect: questions per connection; 0 = keep it open
    std::uint64_t count = 0;  // -n: questions to ask after the warm-up; 0 = as many as -d allows
    std::vector<std::string> questions;
    std::vector<std::string> answers;
    std::string suffix;
    bool json = false;
    std::string csv_path;
    std::string hdr_path;  // --hdr-file: the .hgrm spectrum
    std::string trace_path;  // --trace: every connect and question as Trace Event Format
    std::size_t trace_max_events = TraceRecorder::default_max_events;
    std::vector<int> sweep;
    std::vector<int> server_pids;
};

CLI::App* add_bench_command(CLI::App& zen, BenchOptions& options);
int run_bench(const BenchOptions& options);

}  // namespace zen
