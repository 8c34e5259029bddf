// `zen bench` end to end: against zen servers it starts itself, and against the real
// redis-server and memcached, the peers the performance issues compare with.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "support/harness.hpp"

namespace zen::test {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

std::string port_text(std::uint16_t port) { return std::to_string(port); }

// Runs `zen bench ... --json` and parses its one JSON object (an empty object if none).
Json bench_json(const std::vector<std::string>& args, RunResult& result, Millis timeout = 30s) {
    std::vector<std::string> argv{"bench"};
    argv.insert(argv.end(), args.begin(), args.end());
    argv.push_back("--json");
    result = run_zen(argv, timeout);
    const Json parsed = Json::parse(result.out, nullptr, false);
    if (parsed.is_discarded()) {
        ADD_FAILURE() << "not JSON: " << result.out << " / " << result.err;
        return Json::object();
    }
    return parsed;
}

void expect_ordered_percentiles(const Json& report) {
    EXPECT_LE(report["min_us"].get<double>(), report["p50_us"].get<double>());
    EXPECT_LE(report["p50_us"].get<double>(), report["p90_us"].get<double>());
    EXPECT_LE(report["p90_us"].get<double>(), report["p99_us"].get<double>());
    EXPECT_LE(report["p99_us"].get<double>(), report["p999_us"].get<double>());
    EXPECT_LE(report["p999_us"].get<double>(), report["max_us"].get<double>());
    EXPECT_GT(report["p50_us"].get<double>(), 0.0);
}

TEST(Bench, ClosedLoopCountsRightAnswersAndNoErrors) {
    auto server = Server::start({"--arch", "epoll"});
    RunResult result;
    const Json report =
        bench_json({"-p", port_text(server->port()), "-c", "8", "-d", "0.5", "-w", "0.1"}, result);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(report["mode"], "closed");
    EXPECT_EQ(report["connections"], 8);
    EXPECT_EQ(report["errors"], 0);
    EXPECT_GT(report["requests"].get<std::uint64_t>(), 200u);
    EXPECT_NEAR(report["rps"].get<double>(), report["requests"].get<double>() / 0.5, 1.0);
    expect_ordered_percentiles(report);
    for (const char* kind : {"connect", "reset", "closed", "mismatch", "timeout"})
        EXPECT_EQ(report["errors_by_kind"][kind], 0) << kind;
    EXPECT_GT(report["client_cpu_us_per_request"].get<double>(), 0.0);
}

TEST(Bench, PipelinedAnswersAreCheckedInOrder) {
    auto server = Server::start({"--arch", "uring"});
    RunResult result;
    const Json report =
        bench_json({"-p", port_text(server->port()), "-c", "4", "-P", "16", "-d", "0.5", "-w", "0.1"}, result);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(report["depth"], 16);
    EXPECT_EQ(report["errors"], 0);
    EXPECT_GT(report["requests"].get<std::uint64_t>(), 1000u);
}

TEST(Bench, ThreadsShareTheConnections) {
    auto server = Server::start({"--arch", "reuseport"});
    RunResult result;
    const Json report =
        bench_json({"-p", port_text(server->port()), "-c", "5", "-t", "2", "-d", "0.4", "-w", "0"}, result);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(report["threads"], 2);
    EXPECT_EQ(report["errors"], 0);
    EXPECT_GT(report["requests"].get<std::uint64_t>(), 100u);
}

TEST(Bench, OpenLoopHoldsFiveThousandAnswersASecond) {
    auto server = Server::start({"--arch", "epoll"});
    RunResult result;
    const Json report =
        bench_json({"-p", port_text(server->port()), "-c", "10", "-r", "5000", "-d", "2", "-w", "0.2"}, result);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(report["mode"], "open");
    EXPECT_EQ(report["errors"], 0);
    EXPECT_NEAR(report["rps"].get<double>(), 5000.0, 250.0);
    expect_ordered_percentiles(report);
    // Latency from when a question was due can only be longer than from when it was sent.
    EXPECT_GE(report["p50_us"].get<double>(), report["uncorrected"]["p50_us"].get<double>());
}

TEST(Bench, CorrectedLatencyShowsTheQueueASlowServerBuilds) {
    // One connection, questions due every 10 ms, answers that take 20 ms each: the backlog grows,
    // and only the latency counted from the due time shows it (coordinated omission).
    auto server = Server::start({"--arch", "single", "--delay", "0.02"});
    RunResult result;
    const Json report = bench_json(
        {"-p", port_text(server->port()), "-c", "1", "-r", "100", "-d", "1", "-w", "0", "--timeout", "5"}, result);
    EXPECT_EQ(report["errors"], 0) << result.err;
    EXPECT_GT(report["requests"].get<std::uint64_t>(), 90u);
    EXPECT_LT(report["uncorrected"]["p99_us"].get<double>(), 150'000.0);
    EXPECT_GT(report["p99_us"].get<double>(), 400'000.0);
}

TEST(Bench, WrongAnswersCountAsMismatches) {
    auto server = Server::start({"--arch", "poll"});
    RunResult result;
    const Json report = bench_json({"-p", port_text(server->port()), "-c", "2", "-d", "0.3", "-w", "0", "--question",
                                    "Beautiful is better than?", "--answer", "Pretty."},
                                   result);
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_EQ(report["requests"], 0);
    EXPECT_GT(report["errors_by_kind"]["mismatch"].get<std::uint64_t>(), 0u);
    EXPECT_EQ(report["errors"], report["errors_by_kind"]["mismatch"]);
}

TEST(Bench, AServerKilledMidRunEndsTheRunOnTimeWithErrors) {
    auto server = Server::start({"--arch", "epoll"});
    std::thread killer([&server] {
        std::this_thread::sleep_for(700ms);
        server->process().stop(SIGKILL);
    });
    const auto started = Clock::now();
    RunResult result;
    const Json report = bench_json(
        {"-p", port_text(server->port()), "-c", "5", "-d", "2", "-w", "0", "--timeout", "1"}, result, 15s);
    const auto elapsed = Clock::now() - started;
    killer.join();
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_GT(report["requests"].get<std::uint64_t>(), 0u);
    EXPECT_GT(report["errors_by_kind"]["connect"].get<std::uint64_t>(), 0u);
    EXPECT_GT(report["errors"].get<std::uint64_t>(), 0u);
    EXPECT_LT(elapsed, 2s + 1s + 1500ms);  // duration + timeout + start-up slack
}

TEST(Bench, AServerThatNeverAnswersCostsTimeoutsNotAHang) {
    auto server = Server::start({"--arch", "single", "--delay", "60"});
    const auto started = Clock::now();
    RunResult result;
    const Json report = bench_json(
        {"-p", port_text(server->port()), "-c", "3", "-d", "1", "-w", "0", "--timeout", "0.3"}, result, 15s);
    const auto elapsed = Clock::now() - started;
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_EQ(report["requests"], 0);
    EXPECT_GT(report["errors_by_kind"]["timeout"].get<std::uint64_t>(), 0u);
    EXPECT_LT(elapsed, 1s + 300ms + 1500ms);
    server->process().stop(SIGKILL);
}

TEST(Bench, SweepRunsOneCyclePerLevelAndWritesCsv) {
    auto server = Server::start({"--arch", "threaded"});
    const std::string csv = ::testing::TempDir() + "zen-bench-sweep-" + std::to_string(::getpid()) + ".csv";
    RunResult result;
    const Json report = bench_json(
        {"-p", port_text(server->port()), "--sweep", "1,2,3", "-d", "0.3", "-w", "0", "--csv", csv}, result);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    ASSERT_TRUE(report["cycles"].is_array());
    ASSERT_EQ(report["cycles"].size(), 3u);
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(report["cycles"][i]["connections"], i + 1);
        EXPECT_GT(report["cycles"][i]["requests"].get<std::uint64_t>(), 0u);
    }
    std::ifstream file(csv);
    std::vector<std::string> lines;
    for (std::string line; std::getline(file, line);) lines.push_back(line);
    std::remove(csv.c_str());
    ASSERT_EQ(lines.size(), 4u);
    EXPECT_EQ(lines[0].rfind("connections,threads,depth,mode,rate,duration_s,requests,rps,errors", 0), 0u);
    EXPECT_EQ(lines[3].rfind("3,1,1,closed,", 0), 0u) << lines[3];
}

TEST(Bench, TextReportAndSweepTable) {
    auto server = Server::start({"--arch", "epoll"});
    RunResult single = run_zen({"bench", "-p", port_text(server->port()), "-c", "2", "-d", "0.2", "-w", "0"});
    EXPECT_EQ(single.exit_code, 0) << single.err;
    EXPECT_NE(single.out.find("answers/s"), std::string::npos) << single.out;
    EXPECT_NE(single.out.find("p99.9"), std::string::npos);
    EXPECT_NE(single.out.find("errors       0 (connect 0, reset 0, closed 0, mismatch 0, timeout 0)"),
              std::string::npos)
        << single.out;
    // No live progress line when stderr is not a terminal.
    EXPECT_EQ(single.err, "");
    RunResult sweep = run_zen({"bench", "-p", port_text(server->port()), "--sweep", "1,4", "-d", "0.2", "-w", "0"});
    EXPECT_EQ(sweep.exit_code, 0) << sweep.err;
    EXPECT_NE(sweep.out.find("conns    answers/s"), std::string::npos) << sweep.out;
}

TEST(Bench, ServerCpuPerAnswerIncludesPreforkWorkers) {
    // Two workers serve two connections at a time: a third would wait in the backlog and time out.
    auto server = Server::start({"--arch", "prefork", "--workers", "2"});
    RunResult result;
    const Json report = bench_json({"-p", port_text(server->port()), "-c", "2", "-d", "1", "-w", "0.1",
                                    "--server-pid", std::to_string(server->process().pid())},
                                   result);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    ASSERT_TRUE(report["server_cpu_us_per_answer"].is_number()) << report.dump();
    // The parent only waits; the answers are the workers' CPU time.
    EXPECT_GT(report["server_cpu_s"].get<double>(), 0.05);
    EXPECT_GT(report["server_cpu_us_per_answer"].get<double>(), 0.0);
}

TEST(Bench, BadOptionsGetOneClearLine) {
    const struct {
        std::vector<std::string> args;
        int exit_code;
        std::string message;
    } cases[] = {
        {{"--question", "a?"}, 2, "every --question needs an --answer"},
        {{"--question", "a?", "--answer", "A.", "--suffix", ".."}, 2, "--suffix must be one byte"},
        {{"--question", "a\\q?", "--answer", "A."}, 2, "unknown escape \\q"},
        {{"--suffix", "!"}, 2, "--suffix applies to --question/--answer pairs"},
        {{"-c", "0"}, 2, "--connections"},
        {{"-d", "0"}, 2, "--duration"},
        {{"-r", "-5"}, 2, "--rate"},
        {{"--sweep", "1,x"}, 2, "--sweep"},
        {{"--server-pid", "999999999"}, 2, "--server-pid"},
        {{"no.such.host.invalid"}, 2, "no.such.host.invalid"},
    };
    for (const auto& c : cases) {
        std::vector<std::string> argv{"bench"};
        argv.insert(argv.end(), c.args.begin(), c.args.end());
        const RunResult result = run_zen(argv);
        EXPECT_EQ(result.exit_code, c.exit_code) << c.message << ": " << result.err;
        EXPECT_NE(result.err.find(c.message), std::string::npos) << result.err;
        EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
    }
}

TEST(Bench, NobodyListeningFailsAtOnce) {
    const std::uint16_t port = free_loopback_port();
    const RunResult result = run_zen({"bench", "-p", port_text(port), "-d", "5"}, 5s);
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_NE(result.err.find("Connection refused"), std::string::npos) << result.err;
}

TEST(Bench, HelpNamesEveryOption) {
    const RunResult result = run_zen({"bench", "--help"});
    EXPECT_EQ(result.exit_code, 0);
    for (const char* option : {"--connections", "--threads", "--duration", "--warmup", "--pipeline", "--rate",
                               "--question", "--answer", "--suffix", "--json", "--csv", "--sweep", "--timeout",
                               "--server-pid"})
        EXPECT_NE(result.out.find(option), std::string::npos) << option;
}

TEST(BenchPeers, RedisServerAnswersInlinePing) {
    const std::uint16_t port = free_loopback_port();
    auto redis = Process::start({"redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1", "--save", "",
                                 "--appendonly", "no"});
    ASSERT_TRUE(port_accepts(port, 5s)) << "redis-server did not start (make deps installs it): " << redis->output();
    RunResult result;
    const Json report = bench_json({"-p", port_text(port), "-c", "10", "-P", "4", "-d", "0.5", "-w", "0.1",
                                    "--question", "PING\\r\\n", "--answer", "+PONG\\r\\n", "--server-pid",
                                    std::to_string(redis->pid())},
                                   result);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(report["errors"], 0);
    EXPECT_GT(report["requests"].get<std::uint64_t>(), 1000u);
    EXPECT_TRUE(report["server_cpu_us_per_answer"].is_number());
    redis->stop(SIGTERM);
}

TEST(BenchPeers, MemcachedAnswersVersion) {
    const RunResult version = run_command({"memcached", "-V"});
    ASSERT_EQ(version.exit_code, 0) << "memcached is missing (make deps installs it)";
    std::istringstream words(version.out);
    std::string name, number;
    words >> name >> number;  // "memcached 1.6.18"
    const std::uint16_t port = free_loopback_port();
    std::vector<std::string> argv{"memcached", "-t", "1", "-l", "127.0.0.1", "-p", std::to_string(port), "-U", "0"};
    if (::geteuid() == 0) argv.insert(argv.end(), {"-u", "root"});  // it refuses root without saying so
    auto memcached = Process::start(argv);
    ASSERT_TRUE(port_accepts(port, 5s)) << memcached->output();
    RunResult result;
    const Json report = bench_json({"-p", port_text(port), "-c", "4", "-d", "0.5", "-w", "0.1", "--question",
                                    "version\\r\\n", "--answer", "VERSION " + number + "\\r\\n"},
                                   result);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(report["errors"], 0);
    EXPECT_GT(report["requests"].get<std::uint64_t>(), 100u);
    memcached->stop(SIGTERM);
}

}  // namespace
}  // namespace zen::test
