// The trace recorder (src/base/trace.hpp) in memory: the document it writes, the cap, fork().
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "base/trace.hpp"

namespace zen {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

std::unique_ptr<TraceRecorder> recorder(std::size_t max_events, std::vector<std::string>* lines = nullptr) {
    auto made = TraceRecorder::create(max_events, [lines](const std::string& line) {
        if (lines != nullptr) lines->push_back(line);
    });
    EXPECT_TRUE(made) << made.error();
    return std::move(made).value();
}

std::vector<json> events_named(const json& document, std::string_view name) {
    std::vector<json> found;
    for (const json& event : document["traceEvents"]) {
        if (event["name"] == name) found.push_back(event);
    }
    return found;
}

TEST(TraceRecorder, WritesEachPhaseAsTheTraceEventFormatSpellsIt) {
    auto trace = recorder(1000);
    const TimePoint start = TimePoint(1'234'567'891ns);
    trace->name_process("zen serve --arch epoll");
    trace->name_thread("event loop");
    trace->complete("answer", start, start + 1500ns, 7, 3);
    trace->complete("question", start, start + 2us, 9, 1, start - 1us);
    trace->instant("backpressure on", 7);
    trace->instant("refused", 0, "why", "server \"busy\"\n");
    trace->begin_async("connection", "connection", 7, "peer", "('127.0.0.1', 5000)", start);
    trace->end_async("connection", "connection", 7, "reason", "has closed", start + 1ms);
    trace->flow_start("accept", 11, start);
    trace->flow_end("accept", 11, start + 1us);

    const json document = json::parse(trace->json());
    EXPECT_EQ(document["displayTimeUnit"], "ms");
    const auto& events = document["traceEvents"];
    ASSERT_EQ(events.size(), 10u);
    for (const json& event : events) {
        EXPECT_EQ(event["pid"], ::getpid());
        EXPECT_EQ(event["tid"], ::gettid());
    }
    EXPECT_EQ(events_named(document, "process_name").at(0)["args"]["name"], "zen serve --arch epoll");
    EXPECT_EQ(events_named(document, "thread_name").at(0)["ph"], "M");

    const json answer = events_named(document, "answer").at(0);
    EXPECT_EQ(answer["ph"], "X");
    EXPECT_DOUBLE_EQ(answer["ts"].get<double>(), 1234567.891);
    EXPECT_DOUBLE_EQ(answer["dur"].get<double>(), 1.5);
    EXPECT_EQ(answer["args"]["connection"], 7);
    EXPECT_EQ(answer["args"]["question"], 3);
    EXPECT_FALSE(answer["args"].contains("due"));
    EXPECT_DOUBLE_EQ(events_named(document, "question").at(0)["args"]["due"].get<double>(), 1234566.891);

    const json refused = events_named(document, "refused").at(0);
    EXPECT_EQ(refused["ph"], "i");
    EXPECT_EQ(refused["s"], "t");
    EXPECT_EQ(refused["args"]["why"], "server \"busy\"\n");
    EXPECT_FALSE(refused["args"].contains("connection"));

    const auto spans = events_named(document, "connection");
    ASSERT_EQ(spans.size(), 2u);
    EXPECT_EQ(spans[0]["ph"], "b");
    EXPECT_EQ(spans[0]["cat"], "connection");
    EXPECT_EQ(spans[0]["id"], 7);
    EXPECT_EQ(spans[1]["ph"], "e");
    EXPECT_EQ(spans[1]["args"]["reason"], "has closed");
    const auto flows = events_named(document, "accept");
    ASSERT_EQ(flows.size(), 2u);
    EXPECT_EQ(flows[0]["ph"], "s");
    EXPECT_EQ(flows[1]["ph"], "f");
    EXPECT_EQ(flows[1]["id"], 11);
}

TEST(TraceRecorder, CutsLongTextsAndKeepsTheDocumentValid) {
    auto trace = recorder(10);
    trace->instant("error", 1, "error", std::string(200, 'x') + "\xc3\xa9");
    trace->instant("error", 1, "error", "caf\xc3\xa9");
    const json document = json::parse(trace->json());
    EXPECT_EQ(document["traceEvents"][0]["args"]["error"], std::string(TraceRecorder::text_capacity, 'x'));
    EXPECT_EQ(document["traceEvents"][1]["args"]["error"], "caf??");
}

TEST(TraceRecorder, StopsAtItsCapWithOneReport) {
    std::vector<std::string> lines;
    auto trace = recorder(300, &lines);
    std::vector<std::thread> threads;
    for (int t = 0; t < 3; ++t) {
        threads.emplace_back([&trace] {
            for (int i = 0; i < 1000; ++i) trace->instant("tick", 1);
        });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_LE(trace->recorded(), 300u);
    EXPECT_GT(trace->recorded(), 0u);
    EXPECT_TRUE(trace->stopped());
    ASSERT_EQ(lines.size(), 1u);
    EXPECT_NE(lines[0].find("--trace-max-events (300 events)"), std::string::npos) << lines[0];
    const json document = json::parse(trace->json());
    EXPECT_EQ(document["traceEvents"].size(), trace->recorded());
}

TEST(TraceRecorder, RefusesACapOutOfRange) {
    EXPECT_FALSE(TraceRecorder::create(0, nullptr));
    EXPECT_FALSE(TraceRecorder::create(TraceRecorder::largest_max_events + 1, nullptr));
}

TEST(TraceRecorder, ForkedChildrenRecordIntoTheParentsTrace) {
    auto trace = recorder(10'000);
    trace->instant("before", 1);  // the parent's chunk, which the child must not write into
    const pid_t child = ::fork();
    if (child == 0) {
        trace->name_process("prefork child 1");
        for (int i = 0; i < 300; ++i) trace->instant("in child", 2);
        ::_exit(0);
    }
    ASSERT_GT(child, 0);
    for (int i = 0; i < 300; ++i) trace->instant("in parent", 3);
    int status = 0;
    ASSERT_EQ(::waitpid(child, &status, 0), child);
    const json document = json::parse(trace->json());
    const auto in_child = events_named(document, "in child");
    const auto in_parent = events_named(document, "in parent");
    ASSERT_EQ(in_child.size(), 300u);
    ASSERT_EQ(in_parent.size(), 300u);
    for (const json& event : in_child) EXPECT_EQ(event["pid"], child);
    for (const json& event : in_parent) EXPECT_EQ(event["pid"], ::getpid());
    EXPECT_EQ(events_named(document, "process_name").at(0)["pid"], child);
}

TEST(TraceRecorder, WritesAFileNamedWithItsPid) {
    auto trace = recorder(10);
    trace->instant("one", 1);
    const std::string pattern = ::testing::TempDir() + "zen-trace-%p.json";
    ASSERT_TRUE(trace->write(pattern));
    const std::string path = expand_trace_path(pattern, ::getpid());
    EXPECT_NE(path.find(std::to_string(::getpid())), std::string::npos);
    std::FILE* file = std::fopen(path.c_str(), "r");
    ASSERT_NE(file, nullptr);
    const json document = json::parse(file);
    std::fclose(file);
    EXPECT_EQ(document["traceEvents"].size(), 1u);
    std::remove(path.c_str());
    EXPECT_EQ(expand_trace_path("a%%p-%p", 42), "a%p-42");
    EXPECT_FALSE(trace->write("/nonexistent-folder/trace.json"));
}

}  // namespace
}  // namespace zen
