#include "tools/bench/bench_command.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "base/cli.hpp"
#include "base/resources.hpp"
#include "net/address.hpp"
#include "net/connector.hpp"
#include "tools/bench/load_thread.hpp"
#include "tools/bench/process_cpu.hpp"
#include "tools/bench/workload.hpp"

namespace zen {

namespace {

using Json = nlohmann::ordered_json;

constexpr std::int64_t nanoseconds_per_ms = 1'000'000;

void fail(std::string_view message) { std::cerr << "zen bench: " << message << '\n'; }

struct Cycle {
    int connections = 0;
    int threads = 0;
    double seconds = 0;
    LoadTally tally;
    double client_cpu_seconds = 0;
    std::optional<double> server_cpu_seconds;

    double rps() const { return seconds > 0 ? static_cast<double>(tally.requests) / seconds : 0; }
};

std::string grouped(std::uint64_t value) {
    const std::string digits = std::to_string(value);
    std::string text;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) text += ',';
        text += digits[i];
    }
    return text;
}

std::string fixed(double value, int decimals) {
    std::ostringstream text;
    text.setf(std::ios::fixed);
    text.precision(decimals);
    text << value;
    return text.str();
}

double microseconds(std::uint64_t nanoseconds) { return static_cast<double>(nanoseconds) / 1000.0; }

// Rounded to 0.1 us so the JSON reads well; the histogram is only that precise anyway.
double rounded_us(std::uint64_t nanoseconds) { return std::round(microseconds(nanoseconds) * 10.0) / 10.0; }

void sleep_until(std::int64_t deadline_ns) {
    const timespec at{static_cast<time_t>(deadline_ns / 1'000'000'000), static_cast<long>(deadline_ns % 1'000'000'000)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &at, nullptr) == EINTR) {
    }
}

std::optional<double> server_cpu(const std::vector<int>& pids) {
    if (pids.empty()) return std::nullopt;
    double total = 0;
    for (int pid : pids) {
        auto seconds = process_tree_cpu_seconds(pid);
        if (!seconds) return std::nullopt;
        total += *seconds;
    }
    return total;
}

Cycle run_cycle(const BenchOptions& options, const SocketAddress& target, const Workload& workload, int connections,
                bool live) {
    Cycle cycle;
    cycle.connections = connections;
    cycle.threads = std::min(options.threads, connections);
    const std::int64_t start = monotonic_ns();
    const std::int64_t measure_start = start + options.warmup.count() * nanoseconds_per_ms;
    const std::int64_t end = measure_start + options.duration.count() * nanoseconds_per_ms;

    std::vector<std::unique_ptr<LoadThread>> loads;
    for (int t = 0; t < cycle.threads; ++t) {
        const int share = connections / cycle.threads + (t < connections % cycle.threads ? 1 : 0);
        LoadPlan plan;
        plan.target = target;
        plan.workload = &workload;
        plan.depth = options.depth;
        plan.rate = options.rate * share / connections;
        plan.phase = static_cast<double>(t) / cycle.threads;
        plan.start_ns = start;
        plan.measure_start_ns = measure_start;
        plan.end_ns = end;
        plan.timeout_ns = options.timeout.count() * nanoseconds_per_ms;
        loads.push_back(std::make_unique<LoadThread>(plan, share));
    }
    std::vector<std::thread> threads;
    for (auto& load : loads) threads.emplace_back([&load] { load->run(); });

    const auto answered = [&loads] {
        std::uint64_t total = 0;
        for (const auto& load : loads) total += load->answered_so_far();
        return total;
    };
    const auto errors = [&loads] {
        std::uint64_t total = 0;
        for (const auto& load : loads) total += load->errors_so_far();
        return total;
    };

    sleep_until(measure_start);
    const double client_cpu_before = own_cpu_seconds();
    const std::optional<double> server_cpu_before = server_cpu(options.server_pids);
    std::uint64_t answered_before = answered();
    for (std::int64_t tick = start + 1'000'000'000; tick < end; tick += 1'000'000'000) {
        sleep_until(tick);
        if (!live) continue;
        const std::uint64_t now_answered = answered();
        std::cerr << "\r\033[K  " << fixed(static_cast<double>(tick - start) / 1e9, 0) << " s"
                  << (tick <= measure_start ? " (warm-up)" : "") << "  " << grouped(now_answered - answered_before)
                  << " answers/s  " << grouped(errors()) << " errors" << std::flush;
        answered_before = now_answered;
    }
    sleep_until(end);
    cycle.client_cpu_seconds = own_cpu_seconds() - client_cpu_before;
    if (const std::optional<double> after = server_cpu(options.server_pids); after && server_cpu_before)
        cycle.server_cpu_seconds = *after - *server_cpu_before;
    for (auto& thread : threads) thread.join();
    if (live) std::cerr << "\r\033[K" << std::flush;

    cycle.seconds = static_cast<double>(end - measure_start) / 1e9;
    for (const auto& load : loads) cycle.tally.merge(load->tally());
    return cycle;
}

Json latency_json(const LatencyHistogram& histogram) {
    Json json;
    json["p50_us"] = rounded_us(histogram.value_at(0.50));
    json["p90_us"] = rounded_us(histogram.value_at(0.90));
    json["p99_us"] = rounded_us(histogram.value_at(0.99));
    json["p999_us"] = rounded_us(histogram.value_at(0.999));
    json["max_us"] = rounded_us(histogram.max());
    json["min_us"] = rounded_us(histogram.min());
    json["mean_us"] = std::round(histogram.mean() / 100.0) / 10.0;
    return json;
}

std::optional<double> per_answer_us(std::optional<double> cpu_seconds, std::uint64_t answers) {
    if (!cpu_seconds || answers == 0) return std::nullopt;
    return std::round(*cpu_seconds * 1e6 / static_cast<double>(answers) * 1000.0) / 1000.0;
}

Json cycle_json(const BenchOptions& options, const Cycle& cycle) {
    Json json;
    json["connections"] = cycle.connections;
    json["threads"] = cycle.threads;
    json["depth"] = options.depth;
    json["mode"] = options.rate > 0 ? "open" : "closed";
    json["rate"] = options.rate;
    json["duration_s"] = cycle.seconds;
    json["requests"] = cycle.tally.requests;
    json["rps"] = std::round(cycle.rps() * 10.0) / 10.0;
    json["errors"] = cycle.tally.error_total();
    Json kinds;
    for (std::size_t i = 0; i < load_error_kinds; ++i) kinds[load_error_names[i]] = cycle.tally.errors[i];
    json["errors_by_kind"] = kinds;
    json["reconnects"] = cycle.tally.reconnects;
    json["retried"] = cycle.tally.retried;
    json.update(latency_json(cycle.tally.corrected));
    json["uncorrected"] = latency_json(cycle.tally.uncorrected);
    const auto client = per_answer_us(cycle.client_cpu_seconds, cycle.tally.requests);
    json["client_cpu_us_per_request"] = client ? Json(*client) : Json(nullptr);
    json["server_cpu_s"] = cycle.server_cpu_seconds ? Json(*cycle.server_cpu_seconds) : Json(nullptr);
    const auto server = per_answer_us(cycle.server_cpu_seconds, cycle.tally.requests);
    json["server_cpu_us_per_answer"] = server ? Json(*server) : Json(nullptr);
    return json;
}

std::string describe_load(const BenchOptions& options, const std::string& target) {
    std::ostringstream text;
    text << "zen bench: " << target << ", " << options.threads << (options.threads == 1 ? " thread, " : " threads, ");
    if (options.rate > 0)
        text << "open loop at " << grouped(static_cast<std::uint64_t>(options.rate)) << " questions/s, ";
    else
        text << "closed loop, ";
    text << "up to " << options.depth << " in flight per connection, " << fixed(options.duration.count() / 1000.0, 1)
         << " s after " << fixed(options.warmup.count() / 1000.0, 1) << " s of warm-up";
    return text.str();
}

void print_cycle(const BenchOptions& options, const Cycle& cycle) {
    const LoadTally& tally = cycle.tally;
    std::cout << "  connections  " << cycle.connections << '\n';
    std::cout << "  answered     " << grouped(tally.requests) << " in " << fixed(cycle.seconds, 2)
              << " s = " << grouped(static_cast<std::uint64_t>(std::llround(cycle.rps()))) << " answers/s\n";
    std::cout << "  errors       " << grouped(tally.error_total()) << " (";
    for (std::size_t i = 0; i < load_error_kinds; ++i)
        std::cout << (i ? ", " : "") << load_error_names[i] << ' ' << grouped(tally.errors[i]);
    std::cout << "); reconnects " << grouped(tally.reconnects) << '\n';
    std::cout << "  retried      " << grouped(tally.retried) << " (sent again after the server closed cleanly)\n";
    const auto latency_line = [](const char* label, const LatencyHistogram& h) {
        std::cout << label << "p50 " << fixed(microseconds(h.value_at(0.5)), 1) << "  p90 "
                  << fixed(microseconds(h.value_at(0.9)), 1) << "  p99 " << fixed(microseconds(h.value_at(0.99)), 1)
                  << "  p99.9 " << fixed(microseconds(h.value_at(0.999)), 1) << "  max "
                  << fixed(microseconds(h.max()), 1) << "  mean " << fixed(h.mean() / 1000.0, 1) << " (us)\n";
    };
    latency_line("  latency      ", tally.corrected);
    if (options.rate > 0) latency_line("  uncorrected  ", tally.uncorrected);
    if (const auto client = per_answer_us(cycle.client_cpu_seconds, tally.requests))
        std::cout << "  generator    " << fixed(*client, 2) << " us of CPU per answer\n";
    if (const auto server = per_answer_us(cycle.server_cpu_seconds, tally.requests))
        std::cout << "  server       " << fixed(*server, 2) << " us of CPU per answer\n";
}

void print_sweep_table(const std::vector<Cycle>& cycles, bool with_server) {
    std::cout << "  conns    answers/s   errors     p50 us     p90 us     p99 us   p99.9 us     max us";
    std::cout << (with_server ? "  server us/answer\n" : "\n");
    for (const Cycle& cycle : cycles) {
        const LatencyHistogram& h = cycle.tally.corrected;
        char line[256];
        std::snprintf(line, sizeof line, "  %5d %12s %8s %10.1f %10.1f %10.1f %10.1f %10.1f", cycle.connections,
                      grouped(static_cast<std::uint64_t>(std::llround(cycle.rps()))).c_str(),
                      grouped(cycle.tally.error_total()).c_str(), microseconds(h.value_at(0.5)),
                      microseconds(h.value_at(0.9)), microseconds(h.value_at(0.99)),
                      microseconds(h.value_at(0.999)), microseconds(h.max()));
        std::cout << line;
        const auto server = per_answer_us(cycle.server_cpu_seconds, cycle.tally.requests);
        if (with_server) std::cout << "  " << (server ? fixed(*server, 2) : std::string("-"));
        std::cout << '\n';
    }
}

std::string csv_number(const Json& value) { return value.is_null() ? "" : value.dump(); }

bool write_csv(const std::string& path, const std::vector<Json>& cycles) {
    std::ofstream file(path);
    if (!file) return false;
    const char* columns[] = {"connections", "threads", "depth", "mode", "rate", "duration_s", "requests", "rps",
                             "errors", "reconnects", "retried", "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "mean_us",
                             "client_cpu_us_per_request", "server_cpu_us_per_answer"};
    for (std::size_t i = 0; i < std::size(columns); ++i) file << (i ? "," : "") << columns[i];
    for (const char* kind : load_error_names) file << ",errors_" << kind;
    file << '\n';
    for (const Json& cycle : cycles) {
        for (std::size_t i = 0; i < std::size(columns); ++i) {
            const Json& value = cycle[columns[i]];
            file << (i ? "," : "") << (value.is_string() ? value.get<std::string>() : csv_number(value));
        }
        for (const char* kind : load_error_names) file << ',' << cycle["errors_by_kind"][kind].dump();
        file << '\n';
    }
    return static_cast<bool>(file.flush());
}

}  // namespace

CLI::App* add_bench_command(CLI::App& zen, BenchOptions& options) {
    CLI::App* bench = zen.add_subcommand("bench", "Load a Zen server (or any suffix-delimited service) and report "
                                                  "throughput, latency percentiles and errors");
    bench->add_option("host", options.host, "server address: an IP address or a name")->capture_default_str();
    bench->add_option("-p,--port", options.port, "TCP port")->check(port_number(1))->capture_default_str();
    bench->add_option("-c,--connections", options.connections, "connections held open")
        ->check(CLI::Range(1, 1'000'000))
        ->capture_default_str();
    bench->add_option("-t,--threads", options.threads, "load threads, each with its own event loop")
        ->check(CLI::Range(1, 256))
        ->capture_default_str();
    add_seconds_option(*bench, "-d,--duration", options.duration, "how long to measure", 0.01);
    add_seconds_option(*bench, "-w,--warmup", options.warmup, "load before measuring; its answers are not counted",
                       0);
    bench->add_option("-P,--pipeline", options.depth, "questions in flight per connection")
        ->check(CLI::Range(1, 65'536))
        ->capture_default_str();
    bench->add_option("-r,--rate", options.rate,
                      "open loop: this many questions per second in all, latency counted from when each was due "
                      "(default: closed loop, ask again as soon as an answer comes)")
        ->check(CLI::Range(0.0, 1e9));
    bench->add_option("--question", options.questions,
                      "a question to send instead of the Zen table (repeatable; escapes \\r \\n \\t \\0 \\\\ \\xHH)");
    bench->add_option("--answer", options.answers, "the answer expected to the --question in the same place");
    bench->add_option("--suffix", options.suffix,
                      "the byte that ends an answer (default: '.' for Zen, else the last byte of the answers)");
    add_seconds_option(*bench, "--timeout", options.timeout,
                       "an answer, a connect or a queued question later than this is an error", 0.001);
    bench->add_flag("--json", options.json, "print one JSON object instead of the text report");
    bench->add_option("--csv", options.csv_path, "also write one CSV row per cycle to this file");
    bench->add_option("--sweep", options.sweep,
                      "run one cycle per connection count, e.g. 1,2,3,5,7,10,13,16,20 (overrides -c)")
        ->delimiter(',')
        ->check(CLI::Range(1, 1'000'000));
    bench->add_option("--server-pid", options.server_pids,
                      "report this process's CPU time per answer, its threads and children included (repeatable)")
        ->check(CLI::Range(1, 1 << 30));
    return bench;
}

int run_bench(const BenchOptions& options) {
    Workload workload = zen_workload();
    if (!options.questions.empty() || !options.answers.empty()) {
        auto custom = custom_workload(options.questions, options.answers, options.suffix);
        if (!custom) {
            fail(custom.error());
            return 2;
        }
        workload = std::move(*custom);
    } else if (!options.suffix.empty()) {
        fail("--suffix applies to --question/--answer pairs; the Zen table ends answers with '.'");
        return 2;
    }
    if (auto addresses = resolve(options.host, options.port, false); !addresses) {
        fail(addresses.error());
        return 2;
    }
    for (int pid : options.server_pids) {
        if (auto cpu = process_tree_cpu_seconds(pid); !cpu) {
            fail("--server-pid " + std::to_string(pid) + ": " + cpu.error());
            return 2;
        }
    }
    raise_open_file_limit();
    // One connection first, so a wrong address fails at once with the reason.
    auto probe = connect_to(options.host, options.port, options.timeout);
    if (!probe) {
        fail(probe.error());
        return 1;
    }
    const SocketAddress target = probe->peer;
    probe->fd.reset();

    const std::vector<int> levels = options.sweep.empty() ? std::vector<int>{options.connections} : options.sweep;
    const bool live = !options.json && isatty(STDERR_FILENO);
    const std::string where = format_address(target);
    if (!options.json) std::cout << describe_load(options, where) << std::endl;

    std::vector<Cycle> cycles;
    std::vector<Json> cycle_records;
    for (int connections : levels) {
        cycles.push_back(run_cycle(options, target, workload, connections, live));
        cycle_records.push_back(cycle_json(options, cycles.back()));
        if (!options.json && options.sweep.empty()) print_cycle(options, cycles.back());
    }
    if (!options.json && !options.sweep.empty()) print_sweep_table(cycles, !options.server_pids.empty());
    if (options.json) {
        Json report;
        report["target"] = where;
        report["warmup_s"] = static_cast<double>(options.warmup.count()) / 1000.0;
        report["timeout_s"] = static_cast<double>(options.timeout.count()) / 1000.0;
        if (options.sweep.empty()) {
            report.update(cycle_records.front());
        } else {
            report["cycles"] = cycle_records;
        }
        std::cout << report.dump() << std::endl;
    }
    if (!options.csv_path.empty() && !write_csv(options.csv_path, cycle_records)) {
        fail("cannot write " + options.csv_path);
        return 1;
    }
    const bool clean = std::all_of(cycles.begin(), cycles.end(), [](const Cycle& c) {
        return c.tally.error_total() == 0 && c.tally.requests > 0;
    });
    return clean ? 0 : 1;
}

}  // namespace zen
