#include "commands/bench/bench_command.hpp"

#include <pthread.h>
#include <signal.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cmath>
#include <ctime>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <thread>

#include "base/build_info.hpp"
#include "base/cli.hpp"
#include "base/resources.hpp"
#include "net/address.hpp"
#include "net/connector.hpp"
#include "net/signals.hpp"
#include "commands/bench/hgrm.hpp"
#include "commands/bench/load_thread.hpp"
#include "commands/bench/process_cpu.hpp"
#include "commands/bench/saturation.hpp"
#include "commands/bench/units.hpp"
#include "commands/bench/workload.hpp"

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
    int interrupted_by = 0;  // the signal that ended the window early, 0 if none

    double rps() const { return seconds > 0 ? static_cast<double>(tally.requests) / seconds : 0; }
};

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

// SIGINT and SIGTERM are blocked in every thread and taken here, by the main thread, as
// values: the first ends the window, a second stops waiting for answers in flight.
sigset_t stop_signals() { return signal_set({SIGINT, SIGTERM}); }

// Sleeps until the deadline; returns early with the signal's number if SIGINT or SIGTERM comes.
int sleep_until(std::int64_t deadline_ns) {
    const sigset_t set = stop_signals();
    for (;;) {
        const std::int64_t left = deadline_ns - monotonic_ns();
        if (left <= 0) return 0;
        const timespec wait{static_cast<time_t>(left / 1'000'000'000), static_cast<long>(left % 1'000'000'000)};
        const int signal = sigtimedwait(&set, nullptr, &wait);
        if (signal > 0) return signal;
    }
}

const char* signal_name(int signal) { return signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "?"; }

OpenLoopOutcome outcome_of(const Cycle& cycle) {
    OpenLoopOutcome outcome;
    outcome.scheduled = cycle.tally.scheduled;
    outcome.answered = cycle.tally.requests;
    outcome.late = cycle.tally.late;
    outcome.unanswered = cycle.tally.unanswered;
    outcome.behind_ns = cycle.tally.behind_ns;
    outcome.seconds = cycle.seconds;
    return outcome;
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

    RunControl control;
    std::atomic<int> running{cycle.threads};
    std::vector<std::unique_ptr<LoadThread>> loads;
    int connections_before = 0;
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
        plan.control = &control;
        plan.reconnect_every = options.reconnect_every;
        plan.connect_rate = options.connect_rate * share / connections;
        if (options.count > 0) {
            // The thread's share of -n, in proportion to its connections; the shares add up to -n.
            const auto upto = [&](int conns) { return options.count * static_cast<std::uint64_t>(conns) / connections; };
            plan.budget = upto(connections_before + share) - upto(connections_before);
        }
        connections_before += share;
        loads.push_back(std::make_unique<LoadThread>(plan, share));
    }
    std::vector<std::thread> threads;
    for (auto& load : loads)
        threads.emplace_back([&load, &running] {
            load->run();
            running.fetch_sub(1);
        });

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

    const auto interrupt = [&](int signal) {
        cycle.interrupted_by = signal;
        control.stop_ns.store(monotonic_ns());
    };
    // Until the deadline, a signal (its number) or every thread done (-n reached, 0).
    const auto wait_until = [&running](std::int64_t deadline) {
        while (running.load() > 0) {
            const std::int64_t now = monotonic_ns();
            if (now >= deadline) return 0;
            if (const int signal = sleep_until(std::min(deadline, now + 20 * nanoseconds_per_ms))) return signal;
        }
        return 0;
    };
    double client_cpu_before = 0;
    std::optional<double> server_cpu_before;
    if (const int signal = wait_until(measure_start)) interrupt(signal);
    if (!cycle.interrupted_by) {
        client_cpu_before = own_cpu_seconds();
        server_cpu_before = server_cpu(options.server_pids);
        std::uint64_t answered_before = answered();
        for (std::int64_t tick = start + 1'000'000'000; tick < end && running.load() > 0; tick += 1'000'000'000) {
            if (const int signal = wait_until(tick)) {
                interrupt(signal);
                break;
            }
            if (running.load() == 0) break;
            if (!live) continue;
            const std::uint64_t now_answered = answered();
            std::cerr << "\r\033[K  " << fixed(static_cast<double>(tick - start) / 1e9, 0) << " s"
                      << (tick <= measure_start ? " (warm-up)" : "") << "  " << grouped(now_answered - answered_before)
                      << " answers/s  " << grouped(errors()) << " errors" << std::flush;
            answered_before = now_answered;
        }
        if (!cycle.interrupted_by)
            if (const int signal = wait_until(end)) interrupt(signal);
        cycle.client_cpu_seconds = own_cpu_seconds() - client_cpu_before;
        if (const std::optional<double> after = server_cpu(options.server_pids); after && server_cpu_before)
            cycle.server_cpu_seconds = *after - *server_cpu_before;
    }
    // Answers still in flight get up to --timeout; a (further) signal stops waiting for them.
    while (running.load() > 0) {
        if (const int signal = sleep_until(monotonic_ns() + 10 * nanoseconds_per_ms)) {
            if (!cycle.interrupted_by) interrupt(signal);
            control.abandon.store(true);
        }
    }
    for (auto& thread : threads) thread.join();
    if (live) std::cerr << "\r\033[K" << std::flush;

    // Each thread's window ends at the plan's end, at the signal, or when its -n share is done.
    std::int64_t window_end = measure_start;
    for (const auto& load : loads) window_end = std::max(window_end, std::min(load->window_end_ns(), end));
    cycle.seconds = static_cast<double>(window_end - measure_start) / 1e9;
    for (const auto& load : loads) cycle.tally.merge(load->tally());
    return cycle;
}

Json series_json(const SecondSeries& series) {
    Json seconds = Json::array();
    for (std::size_t i = 0; i < series.size(); ++i) {
        Json second;
        second["second"] = i;  // covers [i, i + 1) s after the window opened
        second["answers"] = series.at(i).answers;
        second["errors"] = series.at(i).errors;
        second["p50_us"] = rounded_us(series.value_at(i, 0.50));
        second["p99_us"] = rounded_us(series.value_at(i, 0.99));
        seconds.push_back(second);
    }
    return seconds;
}

std::string first_line_with(const char* path, std::string_view key) {
    std::ifstream file(path);
    for (std::string line; std::getline(file, line);) {
        if (line.rfind(key, 0) != 0) continue;
        const std::size_t colon = line.find(':');
        if (colon == std::string::npos) continue;
        const std::size_t start = line.find_first_not_of(" \t", colon + 1);
        return start == std::string::npos ? "" : line.substr(start);
    }
    return "";
}

// "0-3,6": the CPUs this process may run on (taskset's pinning shows here).
std::string allowed_cpus() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return "";
    std::string text;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu) {
        if (!CPU_ISSET(cpu, &set)) continue;
        int last = cpu;
        while (last + 1 < CPU_SETSIZE && CPU_ISSET(last + 1, &set)) ++last;
        text += (text.empty() ? "" : ",") + std::to_string(cpu) + (last > cpu ? "-" + std::to_string(last) : "");
        cpu = last;
    }
    return text;
}

// What ran, on what, with which settings: enough to tell two JSON files apart a year later.
Json manifest_json(const BenchOptions& options) {
    Json manifest;
    manifest["zen_version"] = std::string(zen_version());
    manifest["zen_commit"] = std::string(zen_commit());
    manifest["compiler"] = compiler_text();
    utsname system{};
    if (uname(&system) == 0) {
        manifest["kernel"] = std::string(system.sysname) + " " + system.release + " " + system.version;
        manifest["machine"] = system.machine;
    }
    manifest["cpu_model"] = first_line_with("/proc/cpuinfo", "model name");
    manifest["cpus_online"] = sysconf(_SC_NPROCESSORS_ONLN);
    manifest["bench_cpus_allowed"] = allowed_cpus();
    // The servers' pinning, when zen bench knows them (--server-pid).
    Json servers = Json::object();
    for (int pid : options.server_pids)
        servers[std::to_string(pid)] =
            first_line_with(("/proc/" + std::to_string(pid) + "/status").c_str(), "Cpus_allowed_list");
    manifest["server_cpus_allowed"] = servers;
    Json uring = Json::array();
    std::istringstream lines(uring_report());
    for (std::string line; std::getline(lines, line);) uring.push_back(line);
    manifest["io_uring"] = uring;
    Json settings;
    settings["host"] = options.host;
    settings["port"] = options.port;
    settings["connections"] = options.connections;
    settings["threads"] = options.threads;
    settings["duration_s"] = static_cast<double>(options.duration.count()) / 1000.0;
    settings["warmup_s"] = static_cast<double>(options.warmup.count()) / 1000.0;
    settings["timeout_s"] = static_cast<double>(options.timeout.count()) / 1000.0;
    settings["pipeline"] = options.depth;
    settings["rate"] = options.rate > 0 ? Json(options.rate) : Json(nullptr);
    settings["count"] = options.count > 0 ? Json(options.count) : Json(nullptr);
    settings["connect_rate"] = options.connect_rate > 0 ? Json(options.connect_rate) : Json(nullptr);
    settings["reconnect"] = options.reconnect_every > 0 ? Json(options.reconnect_every) : Json(nullptr);
    settings["questions"] = options.questions;
    settings["answers"] = options.answers;
    settings["suffix"] = options.suffix.empty() ? Json(nullptr) : Json(options.suffix);
    settings["sweep"] = options.sweep;
    settings["server_pids"] = options.server_pids;
    settings["csv"] = options.csv_path.empty() ? Json(nullptr) : Json(options.csv_path);
    settings["hdr_file"] = options.hdr_path.empty() ? Json(nullptr) : Json(options.hdr_path);
    manifest["settings"] = settings;
    return manifest;
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
    json["duration_s"] = std::round(cycle.seconds * 1e6) / 1e6;
    json["requests"] = cycle.tally.requests;
    json["rps"] = std::round(cycle.rps() * 10.0) / 10.0;
    json["errors"] = cycle.tally.error_total();
    Json kinds;
    for (std::size_t i = 0; i < load_error_kinds; ++i) kinds[load_error_names[i]] = cycle.tally.errors[i];
    json["errors_by_kind"] = kinds;
    json["reconnects"] = cycle.tally.reconnects;
    json["opened"] = cycle.tally.opened;
    json["open_at_end"] = cycle.tally.open_at_end;
    json["reconnect_every"] = options.reconnect_every ? Json(options.reconnect_every) : Json(nullptr);
    json["retried"] = cycle.tally.retried;
    json["count"] = options.count > 0 ? Json(options.count) : Json(nullptr);
    json["asked"] = cycle.tally.scheduled;
    json["late"] = cycle.tally.late;
    json["unanswered"] = cycle.tally.unanswered;
    if (options.rate > 0) {
        const Saturation saturation = judge_saturation(outcome_of(cycle));
        json["offered_rps"] = std::round(saturation.offered_rps * 10.0) / 10.0;
        json["achieved_rps"] = std::round(saturation.achieved_rps * 10.0) / 10.0;
        json["fell_behind"] = saturation.fell_behind;
        json["behind_ms"] = std::round(static_cast<double>(cycle.tally.behind_ns) / 1e5) / 10.0;
    } else {
        json["offered_rps"] = nullptr;
        json["achieved_rps"] = json["rps"];
        json["fell_behind"] = nullptr;
        json["behind_ms"] = nullptr;
    }
    json["interrupted"] = cycle.interrupted_by ? Json(signal_name(cycle.interrupted_by)) : Json(nullptr);
    json.update(latency_json(cycle.tally.corrected));
    json["uncorrected"] = latency_json(cycle.tally.uncorrected);
    const auto client = per_answer_us(cycle.client_cpu_seconds, cycle.tally.requests);
    json["client_cpu_us_per_request"] = client ? Json(*client) : Json(nullptr);
    json["server_cpu_s"] = cycle.server_cpu_seconds ? Json(*cycle.server_cpu_seconds) : Json(nullptr);
    const auto server = per_answer_us(cycle.server_cpu_seconds, cycle.tally.requests);
    json["server_cpu_us_per_answer"] = server ? Json(*server) : Json(nullptr);
    json["series"] = series_json(cycle.tally.series);
    json["series_truncated"] = cycle.tally.series.truncated();
    return json;
}

std::string describe_load(const BenchOptions& options, const std::string& target) {
    std::ostringstream text;
    text << "zen bench: " << target << ", " << options.threads << (options.threads == 1 ? " thread, " : " threads, ");
    if (options.rate > 0)
        text << "open loop at " << grouped(static_cast<std::uint64_t>(options.rate)) << " questions/s, ";
    else
        text << "closed loop, ";
    text << "up to " << options.depth << " in flight per connection, ";
    if (options.count > 0) text << grouped(options.count) << " questions in at most ";
    text << fixed(options.duration.count() / 1000.0, 1) << " s after " << fixed(options.warmup.count() / 1000.0, 1)
         << " s of warm-up";
    return text.str();
}

void print_cycle(const BenchOptions& options, const Cycle& cycle) {
    const LoadTally& tally = cycle.tally;
    if (cycle.interrupted_by && cycle.seconds == 0)
        std::cout << "  interrupted  by " << signal_name(cycle.interrupted_by) << " during the warm-up: nothing measured\n";
    else if (cycle.interrupted_by)
        std::cout << "  interrupted  by " << signal_name(cycle.interrupted_by) << " after "
                  << scaled_duration(cycle.seconds * 1e9) << " of the " << scaled_duration(options.duration.count() * 1e6)
                  << " window: a partial result\n";
    std::cout << "  connections  " << cycle.connections;
    if (tally.open_at_end != static_cast<std::uint64_t>(cycle.connections))
        std::cout << " (" << grouped(tally.open_at_end) << " open at the end of the window)";
    if (options.reconnect_every)
        std::cout << ", each closed and opened again every " << grouped(options.reconnect_every) << " questions: "
                  << grouped(tally.opened) << " opened in the window";
    std::cout << '\n';
    if (options.count > 0 && tally.scheduled < options.count && !cycle.interrupted_by)
        std::cout << "  count        -n " << grouped(options.count) << " not reached: " << grouped(tally.scheduled)
                  << " asked before the end of -d\n";
    std::cout << "  answered     " << grouped(tally.requests) << " in " << fixed(cycle.seconds, 2)
              << " s = " << grouped(static_cast<std::uint64_t>(std::llround(cycle.rps()))) << " answers/s\n";
    if (options.rate > 0) {
        const OpenLoopOutcome outcome = outcome_of(cycle);
        std::cout << "  schedule     " << describe_saturation(outcome, judge_saturation(outcome)) << '\n';
    }
    std::cout << "  errors       " << grouped(tally.error_total()) << " (";
    for (std::size_t i = 0; i < load_error_kinds; ++i)
        std::cout << (i ? ", " : "") << load_error_names[i] << ' ' << grouped(tally.errors[i]);
    std::cout << "); reconnects " << grouped(tally.reconnects) << '\n';
    std::cout << "  retried      " << grouped(tally.retried) << " (sent again after the server closed cleanly)\n";
    const auto latency_line = [](const char* label, const LatencyHistogram& h) {
        const auto at = [](std::uint64_t ns) { return scaled_duration(static_cast<double>(ns)); };
        std::cout << label << "p50 " << at(h.value_at(0.5)) << "  p90 " << at(h.value_at(0.9)) << "  p99 "
                  << at(h.value_at(0.99)) << "  p99.9 " << at(h.value_at(0.999)) << "  max " << at(h.max())
                  << "  mean " << scaled_duration(h.mean()) << '\n';
    };
    latency_line("  latency      ", tally.corrected);
    if (options.rate > 0) latency_line("  uncorrected  ", tally.uncorrected);
    if (const auto client = per_answer_us(cycle.client_cpu_seconds, tally.requests))
        std::cout << "  generator    " << scaled_duration(*client * 1e3) << " of CPU per answer\n";
    if (const auto server = per_answer_us(cycle.server_cpu_seconds, tally.requests))
        std::cout << "  server       " << scaled_duration(*server * 1e3) << " of CPU per answer\n";
}

// Pads on the left to `width` characters on screen (µ is two bytes and one character).
std::string right_aligned(const std::string& text, std::size_t width) {
    const auto shown = static_cast<std::size_t>(
        std::count_if(text.begin(), text.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
    return std::string(width > shown ? width - shown : 0, ' ') + text;
}

void print_sweep_table(const std::vector<Cycle>& cycles, bool with_server) {
    std::cout << "  conns    answers/s   errors         p50         p90         p99       p99.9         max";
    std::cout << (with_server ? "   server CPU/answer\n" : "\n");
    for (const Cycle& cycle : cycles) {
        const LatencyHistogram& h = cycle.tally.corrected;
        const auto at = [](std::uint64_t ns) { return scaled_duration(static_cast<double>(ns)); };
        std::cout << "  " << right_aligned(std::to_string(cycle.connections), 5)
                  << right_aligned(grouped(static_cast<std::uint64_t>(std::llround(cycle.rps()))), 13)
                  << right_aligned(grouped(cycle.tally.error_total()), 9);
        for (const double quantile : {0.5, 0.9, 0.99, 0.999}) std::cout << right_aligned(at(h.value_at(quantile)), 12);
        std::cout << right_aligned(at(h.max()), 12);
        const auto server = per_answer_us(cycle.server_cpu_seconds, cycle.tally.requests);
        if (with_server) std::cout << "  " << (server ? scaled_duration(*server * 1e3) : std::string("-"));
        if (cycle.interrupted_by) std::cout << "  (interrupted by " << signal_name(cycle.interrupted_by) << ")";
        std::cout << '\n';
    }
}

// --hdr-file lat.hgrm: lat.hgrm (corrected) and lat.uncorrected.hgrm; with --sweep, lat.c10.hgrm ...
std::string hgrm_path(const std::string& base, std::optional<int> connections, bool uncorrected) {
    const std::size_t slash = base.rfind('/');
    const std::size_t dot = base.rfind('.');
    const bool has_extension = dot != std::string::npos && (slash == std::string::npos || dot > slash + 1);
    const std::string stem = has_extension ? base.substr(0, dot) : base;
    const std::string extension = has_extension ? base.substr(dot) : "";
    return stem + (connections ? ".c" + std::to_string(*connections) : "") + (uncorrected ? ".uncorrected" : "") +
           extension;
}

bool write_hgrm_files(const std::string& base, const Cycle& cycle, bool sweep) {
    const std::optional<int> level = sweep ? std::optional<int>(cycle.connections) : std::nullopt;
    for (const bool uncorrected : {false, true}) {
        std::ofstream file(hgrm_path(base, level, uncorrected));
        if (!file) return false;
        write_hgrm(file, uncorrected ? cycle.tally.uncorrected : cycle.tally.corrected);
        if (!file.flush()) return false;
    }
    return true;
}

std::string csv_number(const Json& value) { return value.is_null() ? "" : value.dump(); }

bool write_csv(const std::string& path, const std::vector<Json>& cycles) {
    std::ofstream file(path);
    if (!file) return false;
    const char* columns[] = {"connections", "threads", "depth", "mode", "rate", "duration_s", "requests", "rps",
                             "errors", "reconnects", "retried", "p50_us", "p90_us", "p99_us", "p999_us", "max_us", "mean_us",
                             "client_cpu_us_per_request", "server_cpu_us_per_answer", "offered_rps", "achieved_rps",
                             "fell_behind", "late", "unanswered", "behind_ms", "interrupted", "count", "asked", "opened", "reconnect_every", "open_at_end"};
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

int run_bench(const BenchOptions& options) {
    // Before any thread starts, so that every thread inherits the mask and the main thread alone
    // takes the signals, through sigtimedwait.
    const sigset_t signals = stop_signals();
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
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
    // A descriptor per connection, an epoll set per thread, and a few to spare (stdio, the probe).
    const int most_connections = options.sweep.empty() ? options.connections
                                                       : *std::max_element(options.sweep.begin(), options.sweep.end());
    const auto needed = static_cast<rlim_t>(most_connections) + static_cast<rlim_t>(options.threads) + 16;
    if (rlimit files{}; getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < needed) {
        fail(std::to_string(most_connections) + " connections need " + grouped(needed) +
             " open files, and the limit is " + grouped(files.rlim_cur) +
             " even raised to the hard limit: raise it (ulimit -Hn, LimitNOFILE=) or use fewer connections");
        return 1;
    }
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
        if (cycles.back().interrupted_by) break;
    }
    if (!options.json && !options.sweep.empty()) print_sweep_table(cycles, !options.server_pids.empty());
    if (options.json) {
        Json report;
        report["target"] = where;
        report["warmup_s"] = static_cast<double>(options.warmup.count()) / 1000.0;
        report["timeout_s"] = static_cast<double>(options.timeout.count()) / 1000.0;
        report["interrupted"] =
            cycles.back().interrupted_by ? Json(signal_name(cycles.back().interrupted_by)) : Json(nullptr);
        report["manifest"] = manifest_json(options);
        if (options.sweep.empty()) {
            report.update(cycle_records.front());
        } else {
            report["cycles"] = cycle_records;
        }
        std::cout << report.dump() << std::endl;
    }
    if (!options.hdr_path.empty()) {
        for (const Cycle& cycle : cycles) {
            if (!write_hgrm_files(options.hdr_path, cycle, !options.sweep.empty())) {
                fail("cannot write " + options.hdr_path);
                return 1;
            }
        }
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
