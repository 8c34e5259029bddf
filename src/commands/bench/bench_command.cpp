#include "commands/bench/bench_command.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

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
#include "base/resources.hpp"
#include "base/text.hpp"
#include "base/trace.hpp"
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

// One cycle at one connection count: the load threads, the warm-up, the measured window with its
// live line, the wait for answers in flight, and the merged tally. Lives on the main thread's
// stack; the load threads hold `this` until drain() joins them, so it is neither copied nor moved.
class CycleRun {
public:
    CycleRun(const BenchOptions& options, const SocketAddress& target, const Workload& workload, int connections,
             bool live, TraceRecorder* trace)
        : options_(options), target_(target), workload_(workload), live_(live), trace_(trace), start_(monotonic_ns()),
          measure_start_(start_ + options.warmup.count() * nanoseconds_per_ms),
          end_(measure_start_ + options.duration.count() * nanoseconds_per_ms),
          running_(std::min(options.threads, connections)) {
        cycle_.connections = connections;
        cycle_.threads = running_.load();
    }
    CycleRun(const CycleRun&) = delete;
    CycleRun& operator=(const CycleRun&) = delete;

    Cycle run() {
        start_threads();
        wait_for_warmup();
        if (!cycle_.interrupted_by) measure();
        drain();
        return collect();
    }

private:
    LoadPlan plan_for(int thread, int share, int connections_before) const {
        const int connections = cycle_.connections;
        LoadPlan plan;
        plan.target = target_;
        plan.workload = &workload_;
        plan.depth = options_.depth;
        plan.rate = options_.rate * share / connections;
        plan.phase = static_cast<double>(thread) / cycle_.threads;
        plan.start_ns = start_;
        plan.measure_start_ns = measure_start_;
        plan.end_ns = end_;
        plan.timeout_ns = options_.timeout.count() * nanoseconds_per_ms;
        plan.control = &control_;
        plan.reconnect_every = options_.reconnect_every;
        plan.connect_rate = options_.connect_rate * share / connections;
        plan.trace = trace_;
        plan.thread_number = thread + 1;
        if (options_.count > 0) {
            // The thread's share of -n, in proportion to its connections; the shares add up to -n.
            const auto upto = [&](int conns) {
                return options_.count * static_cast<std::uint64_t>(conns) / connections;
            };
            plan.budget = upto(connections_before + share) - upto(connections_before);
        }
        return plan;
    }

    // Every plan is made before the first thread starts, so they all share one start time.
    void start_threads() {
        int connections_before = 0;
        for (int t = 0; t < cycle_.threads; ++t) {
            const int share = cycle_.connections / cycle_.threads + (t < cycle_.connections % cycle_.threads ? 1 : 0);
            loads_.push_back(std::make_unique<LoadThread>(plan_for(t, share, connections_before), share));
            connections_before += share;
        }
        for (auto& load : loads_)
            threads_.emplace_back([load = load.get(), this] {
                load->run();
                running_.fetch_sub(1);
            });
    }

    void wait_for_warmup() {
        if (const int signal = wait_until(measure_start_)) interrupt(signal);
    }

    // The window: the CPU either side of it, and a wake-up a second for the live line.
    void measure() {
        const double client_cpu_before = own_cpu_seconds();
        const std::optional<double> server_cpu_before = server_cpu(options_.server_pids);
        tick_each_second();
        if (!cycle_.interrupted_by)
            if (const int signal = wait_until(end_)) interrupt(signal);
        cycle_.client_cpu_seconds = own_cpu_seconds() - client_cpu_before;
        if (const std::optional<double> after = server_cpu(options_.server_pids); after && server_cpu_before)
            cycle_.server_cpu_seconds = *after - *server_cpu_before;
    }

    void tick_each_second() {
        std::uint64_t answered_before = answered();
        for (std::int64_t tick = start_ + 1'000'000'000; tick < end_ && running_.load() > 0; tick += 1'000'000'000) {
            if (const int signal = wait_until(tick)) {
                interrupt(signal);
                return;
            }
            if (running_.load() == 0) return;
            if (!live_) continue;
            const std::uint64_t now_answered = answered();
            print_progress(tick, now_answered - answered_before);
            answered_before = now_answered;
        }
    }

    void print_progress(std::int64_t tick, std::uint64_t answers_in_second) const {
        std::cerr << "\r\033[K  " << fixed(static_cast<double>(tick - start_) / 1e9, 0) << " s"
                  << (tick <= measure_start_ ? " (warm-up)" : "") << "  " << grouped(answers_in_second)
                  << " answers/s  " << grouped(errors()) << " errors" << std::flush;
    }

    // Answers still in flight get up to --timeout; a (further) signal stops waiting for them.
    void drain() {
        while (running_.load() > 0) {
            if (const int signal = sleep_until(monotonic_ns() + 10 * nanoseconds_per_ms)) {
                if (!cycle_.interrupted_by) interrupt(signal);
                control_.abandon.store(true);
            }
        }
        for (auto& thread : threads_) thread.join();
        if (live_) std::cerr << "\r\033[K" << std::flush;
    }

    // Each thread's window ends at the plan's end, at the signal, or when its -n share is done.
    Cycle collect() {
        std::int64_t window_end = measure_start_;
        for (const auto& load : loads_) window_end = std::max(window_end, std::min(load->window_end_ns(), end_));
        cycle_.seconds = static_cast<double>(window_end - measure_start_) / 1e9;
        for (const auto& load : loads_) cycle_.tally.merge(load->tally());
        return std::move(cycle_);
    }

    // Until the deadline, a signal (its number) or every thread done (-n reached, 0).
    int wait_until(std::int64_t deadline) const {
        while (running_.load() > 0) {
            const std::int64_t now = monotonic_ns();
            if (now >= deadline) return 0;
            if (const int signal = sleep_until(std::min(deadline, now + 20 * nanoseconds_per_ms))) return signal;
        }
        return 0;
    }

    void interrupt(int signal) {
        cycle_.interrupted_by = signal;
        control_.stop_ns.store(monotonic_ns());
    }

    // Totals including the warm-up, read while the threads run.
    std::uint64_t answered() const {
        std::uint64_t total = 0;
        for (const auto& load : loads_) total += load->answered_so_far();
        return total;
    }
    std::uint64_t errors() const {
        std::uint64_t total = 0;
        for (const auto& load : loads_) total += load->errors_so_far();
        return total;
    }

    const BenchOptions& options_;
    const SocketAddress& target_;
    const Workload& workload_;
    const bool live_;  // the progress line on stderr, a terminal's
    TraceRecorder* trace_;
    const std::int64_t start_;
    const std::int64_t measure_start_;
    const std::int64_t end_;
    Cycle cycle_;
    RunControl control_;        // written here, read by every load thread
    std::atomic<int> running_;  // load threads not yet done; each counts itself out
    std::vector<std::unique_ptr<LoadThread>> loads_;
    std::vector<std::thread> threads_;
};

Cycle run_cycle(const BenchOptions& options, const SocketAddress& target, const Workload& workload, int connections,
                bool live, TraceRecorder* trace) {
    return CycleRun(options, target, workload, connections, live, trace).run();
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
        // Appended piece by piece: GCC 12's -Wrestrict misreads `"-" + std::to_string(...)` inlined here.
        if (!text.empty()) text += ',';
        text += std::to_string(cpu);
        if (last > cpu) {
            text += '-';
            text += std::to_string(last);
        }
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

// The Zen table, or the --question/--answer pairs; nothing (said on stderr) if they cannot be framed.
std::optional<Workload> chosen_workload(const BenchOptions& options) {
    if (!options.questions.empty() || !options.answers.empty()) {
        auto custom = custom_workload(options.questions, options.answers, options.suffix);
        if (!custom) {
            fail(custom.error());
            return std::nullopt;
        }
        return std::move(*custom);
    }
    if (!options.suffix.empty()) {
        fail("--suffix applies to --question/--answer pairs; the Zen table ends answers with '.'");
        return std::nullopt;
    }
    return zen_workload();
}

// The host resolves and every --server-pid can be measured; false (said on stderr) if not.
bool names_resolve(const BenchOptions& options) {
    if (auto addresses = resolve(options.host, options.port, false); !addresses) {
        fail(addresses.error());
        return false;
    }
    for (int pid : options.server_pids) {
        if (auto cpu = process_tree_cpu_seconds(pid); !cpu) {
            fail("--server-pid " + std::to_string(pid) + ": " + cpu.error());
            return false;
        }
    }
    return true;
}

// Raises the limit of open files as far as it goes; false (said on stderr) if that is still too few.
bool enough_open_files(const BenchOptions& options) {
    raise_open_file_limit();
    // A descriptor per connection, an epoll set per thread, and a few to spare (stdio, the probe).
    const int most_connections = options.sweep.empty() ? options.connections
                                                       : *std::max_element(options.sweep.begin(), options.sweep.end());
    const auto needed = static_cast<rlim_t>(most_connections) + static_cast<rlim_t>(options.threads) + 16;
    if (rlimit files{}; getrlimit(RLIMIT_NOFILE, &files) == 0 && files.rlim_cur < needed) {
        fail(std::to_string(most_connections) + " connections need " + grouped(needed) +
             " open files, and the limit is " + grouped(files.rlim_cur) +
             " even raised to the hard limit: raise it (ulimit -Hn, LimitNOFILE=) or use fewer connections");
        return false;
    }
    return true;
}

// One connection first, so a wrong address fails at once with the reason; the address it reached.
std::optional<SocketAddress> probe_target(const BenchOptions& options) {
    auto probe = connect_to(options.host, options.port, options.timeout);
    if (!probe) {
        fail(probe.error());
        return std::nullopt;
    }
    return probe->peer;
}

struct Runs {
    std::vector<Cycle> cycles;
    std::vector<Json> records;  // cycle_json of each, in the same order
};

// A cycle per --sweep level (or the one -c), the text report of a single one as it ends; a
// signal ends the sweep with the cycle it cut short.
Runs run_levels(const BenchOptions& options, const SocketAddress& target, const Workload& workload,
                TraceRecorder* trace) {
    const std::vector<int> levels = options.sweep.empty() ? std::vector<int>{options.connections} : options.sweep;
    const bool live = !options.json && isatty(STDERR_FILENO);
    Runs runs;
    for (int connections : levels) {
        runs.cycles.push_back(run_cycle(options, target, workload, connections, live, trace));
        runs.records.push_back(cycle_json(options, runs.cycles.back()));
        if (!options.json && options.sweep.empty()) print_cycle(options, runs.cycles.back());
        if (runs.cycles.back().interrupted_by) break;
    }
    return runs;
}

Json report_json(const BenchOptions& options, const std::string& where, const Runs& runs) {
    Json report;
    report["target"] = where;
    report["warmup_s"] = static_cast<double>(options.warmup.count()) / 1000.0;
    report["timeout_s"] = static_cast<double>(options.timeout.count()) / 1000.0;
    const int interrupted_by = runs.cycles.back().interrupted_by;
    report["interrupted"] = interrupted_by ? Json(signal_name(interrupted_by)) : Json(nullptr);
    report["manifest"] = manifest_json(options);
    if (options.sweep.empty()) {
        report.update(runs.records.front());
    } else {
        report["cycles"] = runs.records;
    }
    return report;
}

// --trace's recorder, its file checked writable before any load; null (said on stderr) if not.
std::unique_ptr<TraceRecorder> open_trace(const BenchOptions& options) {
    const std::string path = expand_trace_path(options.trace_path, static_cast<long>(::getpid()));
    const std::string probe = path + ".tmp";
    const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644);
    if (fd < 0) {
        fail("--trace " + options.trace_path + ": cannot write there: " + errno_text(errno));
        return nullptr;
    }
    ::close(fd);
    ::unlink(probe.c_str());
    auto made = TraceRecorder::create(options.trace_max_events, [](const std::string& line) {
        std::cerr << "zen bench: " << line << std::endl;
    });
    if (!made) {
        fail(made.error());
        return nullptr;
    }
    std::unique_ptr<TraceRecorder> trace = std::move(made).value();
    trace->name_process("zen bench");
    trace->name_thread("main");
    return trace;
}

// --hdr-file and --csv; false (said on stderr) at the first that cannot be written.
bool write_files(const BenchOptions& options, const Runs& runs) {
    if (!options.hdr_path.empty()) {
        for (const Cycle& cycle : runs.cycles) {
            if (!write_hgrm_files(options.hdr_path, cycle, !options.sweep.empty())) {
                fail("cannot write " + options.hdr_path);
                return false;
            }
        }
    }
    if (!options.csv_path.empty() && !write_csv(options.csv_path, runs.records)) {
        fail("cannot write " + options.csv_path);
        return false;
    }
    return true;
}

bool all_clean(const std::vector<Cycle>& cycles) {
    return std::all_of(cycles.begin(), cycles.end(),
                       [](const Cycle& c) { return c.tally.error_total() == 0 && c.tally.requests > 0; });
}

}  // namespace

int run_bench(const BenchOptions& options) {
    // Before any thread starts, so that every thread inherits the mask and the main thread alone
    // takes the signals, through sigtimedwait.
    const sigset_t signals = stop_signals();
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    // A usage error (2) before the environment's (1).
    const std::optional<Workload> workload = chosen_workload(options);
    if (!workload || !names_resolve(options)) return 2;
    if (!enough_open_files(options)) return 1;
    const std::optional<SocketAddress> target = probe_target(options);
    if (!target) return 1;

    std::unique_ptr<TraceRecorder> trace;
    if (!options.trace_path.empty()) {
        auto made = open_trace(options);
        if (!made) return 1;
        trace = std::move(made);
    }

    const std::string where = format_address(*target);
    if (!options.json) std::cout << describe_load(options, where) << std::endl;
    const Runs runs = run_levels(options, *target, *workload, trace.get());
    if (!options.json && !options.sweep.empty()) print_sweep_table(runs.cycles, !options.server_pids.empty());
    if (options.json) std::cout << report_json(options, where, runs).dump() << std::endl;
    if (!write_files(options, runs)) return 1;
    if (trace) {
        if (auto written = trace->write(options.trace_path); !written) {
            fail(written.error());
            return 1;
        }
    }
    return all_clean(runs.cycles) ? 0 : 1;
}

}  // namespace zen
