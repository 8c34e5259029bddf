// `zen bench` end to end against zen servers it starts itself, and against the real redis-server
// and memcached, the peers the performance issues compare with. Its pure parts are tested in
// memory in tests/unit/bench_unit_test.cpp.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <sstream>
#include <thread>

#include "support/harness.hpp"
#include "support/hgrm_text.hpp"

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
    // and only the latency counted from the due time shows it (coordinated omission). The
    // schedule stops with the window: about half the questions are answered, the rest never sent.
    auto server = Server::start({"--arch", "single", "--delay", "0.02"});
    RunResult result;
    const Json report = bench_json(
        {"-p", port_text(server->port()), "-c", "1", "-r", "100", "-d", "1", "-w", "0", "--timeout", "5"}, result);
    EXPECT_EQ(report["errors"], 0) << result.err;
    EXPECT_GT(report["requests"].get<std::uint64_t>(), 35u);
    EXPECT_LT(report["requests"].get<std::uint64_t>(), 65u);
    EXPECT_GT(report["unanswered"].get<std::uint64_t>(), 30u);
    EXPECT_EQ(report["fell_behind"], true);
    EXPECT_LT(report["uncorrected"]["p99_us"].get<double>(), 150'000.0);
    EXPECT_GT(report["p99_us"].get<double>(), 400'000.0);
}

TEST(Bench, OpenLoopBeyondTheServerSaysItFellBehindAndEndsOnTime) {
    // --delay 0.001 stalls epoll's one thread a millisecond per answer: under 1,000 answers/s,
    // against 3,000 offered.
    auto server = Server::start({"--arch", "epoll", "--delay", "0.001", "-q"});
    const auto started = Clock::now();
    RunResult result;
    const Json report =
        bench_json({"-p", port_text(server->port()), "-c", "4", "-d", "2", "-w", "0", "-r", "3000"}, result);
    const auto elapsed = Clock::now() - started;
    EXPECT_EQ(result.exit_code, 0) << result.err;  // behind, but no question lost to an error
    EXPECT_EQ(report["errors"], 0);
    EXPECT_NEAR(report["offered_rps"].get<double>(), 3000.0, 150.0);
    EXPECT_LT(report["achieved_rps"].get<double>(), 1100.0);
    EXPECT_GT(report["achieved_rps"].get<double>(), 0.0);
    EXPECT_EQ(report["rps"], report["achieved_rps"]);
    EXPECT_EQ(report["fell_behind"], true);
    EXPECT_GT(report["unanswered"].get<std::uint64_t>(), 2000u);
    EXPECT_GT(report["behind_ms"].get<double>(), 500.0);
    EXPECT_LE(report["late"].get<std::uint64_t>(), 4u);  // at most one in flight per connection
    // The queue grows: the second second waits longer than the first.
    ASSERT_GE(report["series"].size(), 2u);
    EXPECT_GT(report["series"][1]["p50_us"].get<double>(), report["series"][0]["p50_us"].get<double>());
    // The questions still queued are dropped at the end of -d, not sent late.
    EXPECT_LT(elapsed, 2s + 1500ms);

    RunResult text = run_zen({"bench", "-p", port_text(server->port()), "-c", "4", "-d", "0.5", "-w", "0", "-r", "3000"});
    EXPECT_EQ(text.exit_code, 0) << text.err;
    EXPECT_NE(text.out.find("offered 3,000/s, achieved "), std::string::npos) << text.out;
    EXPECT_NE(text.out.find(": the server fell behind ("), std::string::npos) << text.out;
}

TEST(Bench, OpenLoopWithinTheServerKeepsUp) {
    auto server = Server::start({"--arch", "epoll", "-q"});
    RunResult result;
    const Json report =
        bench_json({"-p", port_text(server->port()), "-c", "4", "-d", "1", "-w", "0.2", "-r", "1000"}, result);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(report["fell_behind"], false);
    EXPECT_NEAR(report["achieved_rps"].get<double>(), report["offered_rps"].get<double>(), 50.0);
    EXPECT_LE(report["unanswered"].get<std::uint64_t>(), 4u);
}

TEST(Bench, CountAsksExactlyNQuestionsAcrossThreadsAndEndsWhenAnswered) {
    auto server = Server::start({"--arch", "epoll", "-q"});
    const auto started = Clock::now();
    RunResult result;
    const Json closed = bench_json(
        {"-p", port_text(server->port()), "-n", "1001", "-c", "3", "-t", "2", "-P", "4", "-w", "0.1", "-d", "20"},
        result);
    EXPECT_LT(Clock::now() - started, 10s);  // ends with the last answer, not at -d
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(closed["count"], 1001);
    EXPECT_EQ(closed["asked"], 1001);
    EXPECT_EQ(closed["requests"], 1001);
    EXPECT_EQ(closed["errors"], 0);
    EXPECT_LT(closed["duration_s"].get<double>(), 10.0);

    // Open loop: 300 questions at 1,000/s take about 0.3 s.
    const Json open = bench_json({"-p", port_text(server->port()), "-n", "300", "-r", "1000", "-c", "2", "-w", "0"},
                                 result);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(open["requests"], 300);
    EXPECT_NEAR(open["duration_s"].get<double>(), 0.3, 0.1);
    EXPECT_EQ(open["fell_behind"], false);

    // -d still bounds it, and the text says the count was not reached.
    RunResult capped = run_zen({"bench", "-p", port_text(server->port()), "-n", "100000000", "-d", "0.2", "-w", "0"});
    EXPECT_EQ(capped.exit_code, 0) << capped.err;
    EXPECT_NE(capped.out.find("count        -n 100,000,000 not reached: "), std::string::npos) << capped.out;
}

TEST(Bench, ReconnectClosesAndReopensEveryNQuestionsAsTheBooksClient) {
    auto server = Server::start({"--arch", "threaded", "-q"});
    RunResult result;
    const Json report = bench_json(
        {"-p", port_text(server->port()), "-n", "300", "-c", "2", "-w", "0", "--reconnect", "3"}, result);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(report["requests"], 300);
    // Three questions per connection; at the very end a connection may open once more and find
    // the other one took the last questions of -n.
    EXPECT_GE(report["opened"].get<std::uint64_t>(), 100u);
    EXPECT_LE(report["opened"].get<std::uint64_t>(), 102u);
    EXPECT_EQ(report["reconnects"], 0);
    EXPECT_EQ(report["reconnect_every"], 3);
    EXPECT_EQ(report["errors"], 0);

    // Pipelined and open loop: never more than three on one connection, every answer still checked.
    const Json open = bench_json({"-p", port_text(server->port()), "-r", "1000", "-d", "0.5", "-c", "2", "-P", "8",
                                  "-w", "0", "--reconnect", "3"},
                                 result);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(open["errors"], 0);
    EXPECT_GE(open["opened"].get<std::uint64_t>(), open["requests"].get<std::uint64_t>() / 3);
}

TEST(Bench, TenThousandConnectionsOpenThroughARamp) {
    auto server = Server::start({"--arch", "epoll", "-q"});
    RunResult result;
    // An open loop leaves the server time to accept; a SYN the full backlog dropped is sent again
    // after 1 s and 3 s, inside the warm-up and the window.
    const Json report = bench_json({"-p", port_text(server->port()), "-c", "10000", "-t", "2", "--connect-rate",
                                    "10000", "-r", "5000", "-w", "2", "-d", "1.5", "--timeout", "5"},
                                   result, 60s);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(report["connections"], 10000);
    EXPECT_EQ(report["open_at_end"], 10000);
    EXPECT_EQ(report["reconnects"], 0);
    EXPECT_EQ(report["errors"], 0);
    EXPECT_GT(report["requests"].get<std::uint64_t>(), 5000u);
}

TEST(Bench, TooFewOpenFilesIsOneClearLine) {
    const RunResult result = run_command({"prlimit", "--nofile=200", zen_binary(), "bench", "-c", "1000"});
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_NE(result.err.find("1000 connections need 1,017 open files, and the limit is 200"), std::string::npos)
        << result.err;
    EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
}

std::string file_text(const std::string& path) {
    std::ifstream file(path);
    std::ostringstream text;
    text << file.rdbuf();
    return text.str();
}

TEST(Bench, HdrFileHoldsTheCorrectedAndUncorrectedSpectra) {
    auto server = Server::start({"--arch", "epoll", "-q"});
    const std::string base = ::testing::TempDir() + "zen-bench-" + std::to_string(::getpid());
    RunResult result;
    const Json report = bench_json({"-p", port_text(server->port()), "-c", "2", "-r", "2000", "-d", "0.5", "-w", "0",
                                    "--hdr-file", base + ".hgrm"},
                                   result);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    const std::string corrected = file_text(base + ".hgrm");
    const std::string uncorrected = file_text(base + ".uncorrected.hgrm");
    std::remove((base + ".hgrm").c_str());
    std::remove((base + ".uncorrected.hgrm").c_str());
    for (const std::string* text : {&corrected, &uncorrected}) {
        const std::vector<HgrmLine> lines = hgrm_lines(*text);
        ASSERT_FALSE(lines.empty());
        EXPECT_EQ(lines.back().total, report["requests"].get<std::uint64_t>());
    }
    // The same maximum as the JSON's, in milliseconds.
    EXPECT_NEAR(hgrm_lines(corrected).back().value * 1000.0, report["max_us"].get<double>(), 0.1);
    EXPECT_NEAR(hgrm_lines(uncorrected).back().value * 1000.0, report["uncorrected"]["max_us"].get<double>(), 0.1);

    // A sweep writes one pair per level.
    bench_json({"-p", port_text(server->port()), "--sweep", "1,2", "-d", "0.2", "-w", "0", "--hdr-file", base}, result);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    for (const char* suffix : {".c1", ".c2", ".c1.uncorrected", ".c2.uncorrected"}) {
        EXPECT_FALSE(hgrm_lines(file_text(base + suffix)).empty()) << suffix;
        std::remove((base + suffix).c_str());
    }
}

TEST(Bench, JsonHasASeriesPerSecondAndAManifest) {
    auto server = Server::start({"--arch", "epoll", "-q"});
    RunResult result;
    const Json report = bench_json({"-p", port_text(server->port()), "-c", "2", "-r", "1000", "-d", "2.5", "-w", "0.2",
                                    "-P", "2", "--timeout", "1.5"},
                                   result);
    EXPECT_EQ(result.exit_code, 0) << result.err;
    const Json& series = report["series"];
    ASSERT_TRUE(series.is_array());
    ASSERT_GE(series.size(), 3u);  // 2.5 s: seconds 0, 1 and the half second 2
    EXPECT_LE(series.size(), 4u);  // and perhaps a late answer just after
    std::uint64_t answers = 0, errors = 0;
    for (std::size_t i = 0; i < series.size(); ++i) {
        EXPECT_EQ(series[i]["second"], i);
        answers += series[i]["answers"].get<std::uint64_t>();
        errors += series[i]["errors"].get<std::uint64_t>();
        if (series[i]["answers"].get<std::uint64_t>() > 0) {
            EXPECT_LE(series[i]["p50_us"].get<double>(), series[i]["p99_us"].get<double>());
        }
    }
    EXPECT_EQ(answers, report["requests"].get<std::uint64_t>());
    EXPECT_EQ(errors, report["errors"].get<std::uint64_t>());
    EXPECT_NEAR(series[0]["answers"].get<double>(), 1000.0, 50.0);
    EXPECT_EQ(report["series_truncated"], false);

    const Json& manifest = report["manifest"];
    EXPECT_FALSE(manifest["zen_version"].get<std::string>().empty());
    EXPECT_FALSE(manifest["zen_commit"].get<std::string>().empty());
    EXPECT_EQ(manifest["compiler"].get<std::string>().rfind("g++ ", 0), 0u) << manifest["compiler"];
    EXPECT_EQ(manifest["kernel"].get<std::string>().rfind("Linux ", 0), 0u) << manifest["kernel"];
    EXPECT_FALSE(manifest["cpu_model"].get<std::string>().empty());
    EXPECT_GE(manifest["cpus_online"].get<int>(), 1);
    EXPECT_FALSE(manifest["bench_cpus_allowed"].get<std::string>().empty());
    EXPECT_TRUE(manifest["io_uring"].is_array());
    EXPECT_EQ(manifest["settings"]["connections"], 2);
    EXPECT_EQ(manifest["settings"]["pipeline"], 2);
    EXPECT_EQ(manifest["settings"]["rate"], 1000.0);
    EXPECT_EQ(manifest["settings"]["duration_s"], 2.5);
    EXPECT_EQ(manifest["settings"]["warmup_s"], 0.2);
    EXPECT_EQ(manifest["settings"]["timeout_s"], 1.5);
    EXPECT_EQ(manifest["settings"]["port"], server->port());
}

// The JSON line among a process's mixed stdout and stderr.
Json json_line(const std::string& output) {
    std::istringstream lines(output);
    for (std::string line; std::getline(lines, line);)
        if (!line.empty() && line.front() == '{') return Json::parse(line, nullptr, false);
    return Json();
}

TEST(Bench, SigintEndsTheRunEarlyWithAPartialResult) {
    auto server = Server::start({"--arch", "epoll", "-q"});
    auto bench = Process::start({zen_binary(), "bench", "-p", port_text(server->port()), "-c", "2", "-d", "30", "-w",
                                 "0", "--json"});
    std::this_thread::sleep_for(800ms);
    const auto signalled = Clock::now();
    EXPECT_EQ(bench->stop(SIGINT, 5s), 0) << bench->output();
    EXPECT_LT(Clock::now() - signalled, 1500ms);
    const Json report = json_line(bench->output());
    ASSERT_TRUE(report.is_object()) << bench->output();
    EXPECT_EQ(report["interrupted"], "SIGINT");
    EXPECT_GT(report["requests"].get<std::uint64_t>(), 0u);
    EXPECT_EQ(report["errors"], 0);
    EXPECT_GT(report["duration_s"].get<double>(), 0.3);
    EXPECT_LT(report["duration_s"].get<double>(), 5.0);
    EXPECT_NEAR(report["rps"].get<double>(),
                report["requests"].get<double>() / report["duration_s"].get<double>(), 2.0);
}

TEST(Bench, ASecondSignalStopsWaitingForAnswersInFlight) {
    // A server that takes 5 s per answer: after the first SIGINT the three questions in flight
    // could hold the run for --timeout (10 s); the second SIGINT ends it at once.
    auto server = Server::start({"--arch", "poll", "--delay", "5", "-q"});
    auto bench = Process::start({zen_binary(), "bench", "-p", port_text(server->port()), "-c", "3", "-d", "30", "-w",
                                 "0", "--timeout", "10", "--json"});
    std::this_thread::sleep_for(500ms);
    ::kill(bench->pid(), SIGINT);
    std::this_thread::sleep_for(300ms);
    const auto signalled = Clock::now();
    EXPECT_EQ(bench->stop(SIGINT, 5s), 1) << bench->output();  // no answer at all: exit 1
    EXPECT_LT(Clock::now() - signalled, 1s);
    const Json report = json_line(bench->output());
    ASSERT_TRUE(report.is_object()) << bench->output();
    EXPECT_EQ(report["interrupted"], "SIGINT");
    EXPECT_EQ(report["unanswered"], 3);
    EXPECT_EQ(report["errors"], 0);  // cut short by the user, not lost to a timeout
    server->process().stop(SIGKILL);
}

TEST(Bench, SigtermEndsAnOpenLoopRunWithAPartialTextReport) {
    auto server = Server::start({"--arch", "epoll", "-q"});
    auto bench = Process::start({zen_binary(), "bench", "-p", port_text(server->port()), "-c", "2", "-d", "30", "-w",
                                 "0", "-r", "500"});
    std::this_thread::sleep_for(800ms);
    EXPECT_EQ(bench->stop(SIGTERM, 5s), 0) << bench->output();
    const std::string output = bench->output();
    EXPECT_NE(output.find("interrupted  by SIGTERM after "), std::string::npos) << output;
    EXPECT_NE(output.find("answers/s"), std::string::npos) << output;
    EXPECT_TRUE(std::regex_search(output, std::regex("offered (49[0-9]|50[0-9])/s, achieved "))) << output;
    EXPECT_NE(output.find("the server kept up"), std::string::npos) << output;
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
    // Its pinning, in the manifest: every CPU here, since nothing pinned it.
    const std::string pid = std::to_string(server->process().pid());
    EXPECT_EQ(report["manifest"]["server_cpus_allowed"][pid], report["manifest"]["bench_cpus_allowed"]);
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
        {{"-r", "0"}, 2, "--rate"},
        {{"-r", "abc"}, 2, "--rate"},
        {{"-r", "nan"}, 2, "--rate"},
        {{"-r", "inf"}, 2, "--rate"},
        {{"-r", "5x"}, 2, "--rate"},
        {{"-n", "0"}, 2, "--count"},
        {{"-n", "many"}, 2, "--count"},
        {{"--reconnect", "0"}, 2, "--reconnect"},
        {{"--connect-rate", "0"}, 2, "--connect-rate"},
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
    for (const char* option : {"--connections", "--threads", "--duration", "--count", "--reconnect", "--connect-rate", "--hdr-file", "--warmup", "--pipeline", "--rate",
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
