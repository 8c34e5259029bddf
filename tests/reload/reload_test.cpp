// SIGHUP in every architecture and in the inetd one-client mode: it never stops the server, it
// reopens --log-file after a logrotate-style rename without losing or repeating a line while
// clients are served, and it re-reads --aphorisms for the next question, keeping the old table
// when the new file is bad.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <functional>
#include <sstream>
#include <thread>

#include "conformance/architectures.hpp"
#include "support/harness.hpp"

namespace zen::test {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::string_view beautiful = "Beautiful is better than?";
constexpr int prefork_workers = 2;

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

void write_file(const std::string& path, std::string_view text) {
    std::ofstream out(path, std::ios::trunc);
    out << text;
}

// As an operator replaces a file: the new one is complete before it has the name.
void replace_file(const std::string& path, std::string_view text) {
    write_file(path + ".new", text);
    ASSERT_EQ(std::rename((path + ".new").c_str(), path.c_str()), 0);
}

std::size_t count(const std::string& text, std::string_view needle) {
    std::size_t found = 0;
    for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + needle.size())) ++found;
    return found;
}

bool wait_until(const std::function<bool()>& condition, Millis timeout = 10s) {
    const auto deadline = Clock::now() + timeout;
    while (!condition()) {
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(10ms);
    }
    return true;
}

// `zen serve 127.0.0.1 -p 0 ARGS`, its port read from "Listening at" in its log: stdout, or
// --log-file when given (the harness's Server reads stdout only).
class Zen {
public:
    static std::unique_ptr<Zen> start(const std::vector<std::string>& args, const std::string& log_file = {}) {
        std::vector<std::string> argv{zen_binary(), "serve", "127.0.0.1", "-p", "0"};
        argv.insert(argv.end(), args.begin(), args.end());
        if (!log_file.empty()) argv.insert(argv.end(), {"--log-file", log_file});
        auto zen = std::unique_ptr<Zen>(new Zen);
        zen->log_file_ = log_file;
        zen->process_ = Process::start(argv);
        const std::regex listening(R"(Listening at \(.*, (\d+)\)\n)");
        const auto deadline = Clock::now() + 10s;
        std::smatch match;
        std::string text;  // outlives the loop: match points into it
        for (;;) {
            text = zen->log();
            if (std::regex_search(text, match, listening)) break;
            if (Clock::now() >= deadline) throw std::runtime_error("zen did not start: " + text + zen->process_->output());
            std::this_thread::sleep_for(10ms);
        }
        zen->port_ = static_cast<std::uint16_t>(std::stoi(match[1].str()));
        return zen;
    }

    std::uint16_t port() const { return port_; }
    Process& process() { return *process_; }
    std::string log() const { return log_file_.empty() ? process_->output() : read_file(log_file_); }

private:
    Zen() = default;
    std::unique_ptr<Process> process_;
    std::string log_file_;
    std::uint16_t port_ = 0;
};

// The two marked clients come from 127.0.0.2: the load's clients (127.0.0.1) reuse ports on
// loopback within a second (tcp_tw_reuse), and one reusing a marked client's port made its
// accept line appear in the wrong file once.
constexpr const char* marked_client = "127.0.0.2";

std::string accepted_line(const Connection& client) {
    return "Accepted connection from ('" + std::string(marked_client) + "', " + std::to_string(client.local_port()) + ")";
}

constexpr std::string_view old_table =
    "Beautiful is better than? Ugly.\n"
    "Now is better than? Never.\n";
constexpr std::string_view new_table =
    "# the reloaded table\n"
    "Beautiful is better than? Still ugly.\n"
    "Now is better than? Right now.\n"
    "Flat is better than? Nested.\n";
constexpr std::string_view bad_table =
    "Beautiful is better than? Prettier.\n"
    "Now is better than? Later.\n"
    "this line has no question mark\n";

class EveryArchitecture : public ::testing::TestWithParam<ServerVariant> {
protected:
    void SetUp() override {
        std::string test_name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
        std::replace(test_name.begin(), test_name.end(), '/', '-');  // "Name/arch"
        const std::string stem = ::testing::TempDir() + "zen-reload-" + std::to_string(::getpid()) + "-" + test_name;
        log_path = stem + ".log";
        table_path = stem + ".table";
        for (const std::string& path : {log_path, log_path + ".1", table_path}) std::remove(path.c_str());
    }
    void TearDown() override {
        for (const std::string& path : {log_path, log_path + ".1", table_path}) std::remove(path.c_str());
    }

    bool prefork() const { return GetParam().name == "prefork"; }
    // Each prefork worker reloads what it owns and logs its own line, after the parent's.
    std::size_t lines_per_reload() const { return prefork() ? 1 + prefork_workers : 1; }

    std::unique_ptr<Zen> start(std::vector<std::string> extra, const std::string& log_file = {}) {
        std::vector<std::string> args = GetParam().args;
        if (prefork()) args.insert(args.end(), {"--workers", std::to_string(prefork_workers)});
        args.insert(args.end(), extra.begin(), extra.end());
        auto server = Zen::start(args, log_file);
        if (prefork()) {
            // The workers' operator-signal threads are up once they serve: a HUP then reaches them.
            EXPECT_TRUE(wait_until([&] { return server->process().children().size() == prefork_workers; }));
        }
        return server;
    }

    // Waits for `times` lines containing needle in text(), all processes' lines together.
    bool logged(const std::function<std::string()>& text, std::string_view needle, std::size_t times) {
        return wait_until([&] { return count(text(), needle) >= times; });
    }

    std::string log_path;
    std::string table_path;
};

TEST_P(EveryArchitecture, HangupAfterRenameMovesTheLogToTheNewFileLosingNoLine) {
    auto server = start({}, log_path);

    // A client load runs throughout: one question per connection, bounded in count and time.
    std::atomic<bool> stop_load{false};
    std::atomic<int> connections{0};
    std::atomic<int> failures{0};
    std::thread load([&] {
        const auto deadline = Clock::now() + 8s;
        while (!stop_load.load() && connections.load() < 20'000 && Clock::now() < deadline) {
            Connection client = Connection::open("127.0.0.1", server->port());
            ++connections;
            if (!answered_within(client, beautiful, "Ugly.", 5s)) ++failures;
        }
    });
    std::this_thread::sleep_for(300ms);
    const std::string rotated = log_path + ".1";
    ASSERT_EQ(std::rename(log_path.c_str(), rotated.c_str()), 0);
    // Each closed at once: --arch single serves one connection at a time.
    std::string before_hangup;
    {
        Connection client = Connection::open("127.0.0.1", server->port(), marked_client);
        EXPECT_TRUE(answered_within(client, beautiful, "Ugly.", 5s));
        before_hangup = accepted_line(client);
    }
    ASSERT_EQ(::kill(server->process().pid(), SIGHUP), 0);
    const int connections_at_hangup = connections.load();
    EXPECT_TRUE(logged([&] { return read_file(log_path); }, "Reloaded on SIGHUP: log reopened", lines_per_reload()))
        << read_file(log_path) << "--- rotated:\n" << read_file(rotated);
    std::string after_hangup;
    {
        Connection client = Connection::open("127.0.0.1", server->port(), marked_client);
        EXPECT_TRUE(answered_within(client, beautiful, "Ugly.", 5s));
        after_hangup = accepted_line(client);
    }
    std::this_thread::sleep_for(200ms);
    stop_load.store(true);
    load.join();
    EXPECT_EQ(failures.load(), 0);
    EXPECT_GT(connections.load(), connections_at_hangup) << "the load ended before the HUP";

    EXPECT_TRUE(logged([&] { return read_file(log_path); }, after_hangup, 1)) << read_file(log_path);
    EXPECT_EQ(server->process().stop(SIGTERM), 0);
    const std::string old_lines = read_file(rotated);
    const std::string new_lines = read_file(log_path);
    // The connection accepted before the HUP is in the renamed file, the one after in the new
    // file, each once; the reload line itself is written after the reopen.
    EXPECT_EQ(count(old_lines, before_hangup), 1u) << old_lines;
    EXPECT_EQ(count(new_lines, before_hangup), 0u) << new_lines;
    EXPECT_EQ(count(new_lines, after_hangup), 1u) << new_lines;
    EXPECT_EQ(count(old_lines, after_hangup), 0u) << old_lines;
    EXPECT_EQ(count(old_lines, "Reloaded on SIGHUP"), 0u) << old_lines;
    EXPECT_EQ(count(new_lines, "Listening at"), 0u) << new_lines;
    // Every connection's accept line is in exactly one file, and each file holds whole lines.
    const int expected = connections.load() + 2;
    EXPECT_EQ(count(old_lines + new_lines, "Accepted connection from"), static_cast<std::size_t>(expected));
    EXPECT_EQ(count(new_lines, " accepted " + std::to_string(expected) + ","), 1u) << new_lines;  // the counters
    for (const std::string* text : {&old_lines, &new_lines}) {
        EXPECT_TRUE(text->empty() || text->back() == '\n');
        std::istringstream lines(*text);
        for (std::string line; std::getline(lines, line);) {
            EXPECT_LE(count(line, "connection from"), 1u) << "lines merged: " << line;
            if (line.starts_with("Accepted connection from")) {
                EXPECT_TRUE(line.ends_with(")")) << "a line cut: " << line;
            }
        }
    }
}

TEST_P(EveryArchitecture, HangupWithABadTableKeepsAnsweringFromTheOldOne) {
    write_file(table_path, old_table);
    auto server = start({"--aphorisms", table_path});
    Connection client = Connection::open("127.0.0.1", server->port());
    EXPECT_TRUE(answered_within(client, "Now is better than?", "Never.", 5s));

    replace_file(table_path, bad_table);
    ASSERT_EQ(::kill(server->process().pid(), SIGHUP), 0);
    const std::string failure = "Reload on SIGHUP failed: kept the previous aphorisms: " + table_path +
                                ": line 3: no '?' ending the question";
    EXPECT_TRUE(logged([&] { return server->log(); }, failure, lines_per_reload())) << server->log();
    EXPECT_TRUE(answered_within(client, "Now is better than?", "Never.", 5s));
    client.close();  // --arch single serves one connection at a time
    Connection newcomer = Connection::open("127.0.0.1", server->port());
    EXPECT_TRUE(answered_within(newcomer, "Beautiful is better than?", "Ugly.", 5s));
    EXPECT_EQ(server->process().stop(SIGTERM), 0) << server->log();
    EXPECT_EQ(count(server->log(), "Reload on SIGHUP"), lines_per_reload()) << "one line per reload";
}

TEST_P(EveryArchitecture, HangupWithATableOverMaxQuestionKeepsTheOldOne) {
    write_file(table_path, old_table);
    auto server = start({"--aphorisms", table_path, "--max-question", "30"});
    replace_file(table_path, std::string(old_table) + "This question is longer than thirty bytes? Yes.\n");
    ASSERT_EQ(::kill(server->process().pid(), SIGHUP), 0);
    EXPECT_TRUE(logged([&] { return server->log(); },
                       table_path + ": line 3: a question of 42 bytes, longer than --max-question 30",
                       lines_per_reload()))
        << server->log();
    Connection client = Connection::open("127.0.0.1", server->port());
    EXPECT_TRUE(answered_within(client, "Now is better than?", "Never.", 5s));
    EXPECT_EQ(server->process().stop(SIGTERM), 0);
}

TEST_P(EveryArchitecture, HangupWithAGoodTableAnswersTheNextQuestionFromIt) {
    write_file(table_path, old_table);
    auto server = start({"--aphorisms", table_path});
    Connection existing = Connection::open("127.0.0.1", server->port());
    EXPECT_TRUE(answered_within(existing, "Now is better than?", "Never.", 5s));
    EXPECT_TRUE(answered_within(existing, "Flat is better than?", "Error: unknown aphorism.", 5s));

    replace_file(table_path, new_table);
    ASSERT_EQ(::kill(server->process().pid(), SIGHUP), 0);
    EXPECT_TRUE(logged([&] { return server->log(); }, "Reloaded on SIGHUP: 3 aphorisms from " + table_path,
                       lines_per_reload()))
        << server->log();
    // The same conversation goes on, answered from the new table from its next question.
    EXPECT_TRUE(answered_within(existing, "Now is better than?", "Right now.", 5s)) << server->log();
    EXPECT_TRUE(answered_within(existing, "Flat is better than?Beautiful is better than?", "Nested.Still ugly.", 5s));
    existing.close();  // --arch single serves one connection at a time
    Connection newcomer = Connection::open("127.0.0.1", server->port());
    EXPECT_TRUE(answered_within(newcomer, "Flat is better than?", "Nested.", 5s));
    EXPECT_EQ(server->process().stop(SIGTERM), 0) << server->log();
}

TEST_P(EveryArchitecture, HangupNeverStopsTheServer) {
    auto server = start({});
    const std::vector<pid_t> workers = server->process().children();
    Connection existing = Connection::open("127.0.0.1", server->port());
    for (std::size_t i = 1; i <= 3; ++i) {
        ASSERT_EQ(::kill(server->process().pid(), SIGHUP), 0);
        EXPECT_TRUE(logged([&] { return server->log(); },
                           "Reloaded on SIGHUP: nothing to reload (no --log-file, no --aphorisms)",
                           i * lines_per_reload()))
            << server->log();
        EXPECT_TRUE(server->process().running());
        EXPECT_TRUE(answered_within(existing, beautiful, "Ugly.", 5s));
    }
    existing.close();  // --arch single serves one connection at a time
    Connection newcomer = Connection::open("127.0.0.1", server->port());
    EXPECT_TRUE(answered_within(newcomer, "Simple is better than?", "Complex.", 5s));
    EXPECT_EQ(server->process().children(), workers) << "a prefork worker died of SIGHUP";
    newcomer.close();
    EXPECT_EQ(server->process().stop(SIGTERM), 0) << server->log();
}

// The log replaced by a FIFO nobody reads: SIGHUP's reopen is refused at once (one line, in
// the old file), so SIGUSR1 is still answered there and SIGTERM still stops the server in its
// drain time. Before the fix the reopen's open() waited for a reader for ever on the signal
// thread: no counters, and the stop waited on that thread.
TEST_P(EveryArchitecture, HangupWhenTheLogBecameAFifoKeepsTheOldFileAndTheOtherSignals) {
    auto server = start({"--drain-timeout", "1"}, log_path);
    const std::string rotated = log_path + ".1";
    ASSERT_EQ(std::rename(log_path.c_str(), rotated.c_str()), 0);
    ASSERT_EQ(::mkfifo(log_path.c_str(), 0600), 0);
    ASSERT_EQ(::kill(server->process().pid(), SIGHUP), 0);
    EXPECT_TRUE(logged([&] { return read_file(rotated); },
                       "Reload on SIGHUP failed: log not reopened (still writing to the old file): " + log_path +
                           " is a FIFO, not a regular file or a character device",
                       lines_per_reload()))
        << read_file(rotated);
    ASSERT_EQ(::kill(server->process().pid(), SIGUSR1), 0);
    EXPECT_TRUE(logged([&] { return read_file(rotated); }, "Counters (SIGUSR1): active ", 1)) << read_file(rotated);
    {
        Connection client = Connection::open("127.0.0.1", server->port());
        EXPECT_TRUE(answered_within(client, beautiful, "Ugly.", 5s));
    }
    const auto stopping = Clock::now();
    EXPECT_EQ(server->process().stop(SIGTERM, 5s), 0) << read_file(rotated);
    EXPECT_LT(Clock::now() - stopping, 2s) << "--drain-timeout 1 with no conversation open";
    EXPECT_EQ(count(read_file(rotated), "Stopped on SIGTERM"), 1u) << read_file(rotated);
}

// A --log-file that is a FIFO whose reader never reads (allowed at start-up: it has a reader):
// once the pipe is full, a write() on it would block. No thread but the log's writer may wait
// on it: clients are still answered, SIGHUP still re-reads --aphorisms, SIGUSR1 is taken, and
// SIGTERM still ends the process in its drain time (the lines still queued are given up). The log
// is the same code in every architecture: one thread serving all (single), a thread per client,
// processes forked after the log was opened (prefork), an event loop.
class LogPipe : public EveryArchitecture {};

TEST_P(LogPipe, ALogPipeNobodyReadsStallsNoClientNoSignalAndNoStop) {
    ASSERT_EQ(::mkfifo(log_path.c_str(), 0600), 0);
    const int reader = ::open(log_path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    ASSERT_GE(reader, 0);
    ASSERT_GT(::fcntl(reader, F_SETPIPE_SZ, 4096), 0);  // the smallest pipe: full after a few dozen lines
    const int pipe_size = ::fcntl(reader, F_GETPIPE_SZ);
    write_file(table_path, old_table);
    const std::uint16_t port = free_loopback_port();
    std::vector<std::string> argv{zen_binary(), "serve", "127.0.0.1", "-p", std::to_string(port), "--drain-timeout",
                                  "1", "--aphorisms", table_path, "--log-file", log_path};
    argv.insert(argv.end(), GetParam().args.begin(), GetParam().args.end());
    if (prefork()) argv.insert(argv.end(), {"--workers", std::to_string(prefork_workers)});
    auto process = Process::start(argv);
    std::string seen;  // what the test read of the pipe before it stopped reading
    EXPECT_TRUE(wait_until([&] {
        char buffer[4096];
        for (ssize_t n; (n = ::read(reader, buffer, sizeof buffer)) > 0;) seen.append(buffer, static_cast<std::size_t>(n));
        return seen.find("Listening at") != std::string::npos;
    })) << seen << process->output();
    if (prefork()) {
        EXPECT_TRUE(wait_until([&] { return process->children().size() == prefork_workers; }));
    }
    // Connections until the pipe is full and a thread of zen's waits in write() on it (its
    // wchan, as the kernel reports it); each is answered whether or not its lines fit.
    const auto pipe_full = [&] {
        int queued = 0;
        if (::ioctl(reader, FIONREAD, &queued) != 0 || queued < pipe_size / 2) return false;
        std::vector<pid_t> pids = process->children();
        pids.push_back(process->pid());
        for (const pid_t pid : pids) {
            const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
            std::error_code error;
            for (const auto& task : std::filesystem::directory_iterator(tasks, error)) {
                if (read_file((task.path() / "wchan").string()).find("pipe_write") != std::string::npos) return true;
            }
        }
        return false;
    };
    int failures = 0;
    for (int i = 0; i < 400 && !(i >= 100 && pipe_full()); ++i) {
        Connection client = Connection::open("127.0.0.1", port);
        if (!answered_within(client, beautiful, "Ugly.", 2s)) ++failures;
        if (failures > 2) break;
    }
    EXPECT_EQ(failures, 0) << "a client waited on the log's pipe";
    EXPECT_TRUE(wait_until(pipe_full, 2s)) << "the pipe never filled: the test proves nothing";
    replace_file(table_path, new_table);
    ASSERT_EQ(::kill(process->pid(), SIGHUP), 0);
    EXPECT_TRUE(wait_until([&] {
        Connection client = Connection::open("127.0.0.1", port);
        return answered_within(client, beautiful, "Still ugly.", 300ms);
    }, 5s)) << "SIGHUP was not handled";
    ASSERT_EQ(::kill(process->pid(), SIGUSR1), 0);
    std::this_thread::sleep_for(50ms);
    const auto stopping = Clock::now();
    EXPECT_EQ(process->stop(SIGTERM, 8s), 0);
    EXPECT_LT(Clock::now() - stopping, 3s) << "--drain-timeout 1, and at most 1 s for the log's last lines";
    ::close(reader);
}

// --trace's file is written through FILE.tmp, on SIGUSR1 by the signal thread and at the stop
// by the main thread; a FIFO put there made that open() wait for a reader for ever, so the
// stop never ended. Now it is refused (one line each time) and neither waits.
TEST_P(LogPipe, ATraceFileReplacedByAFifoStallsNeitherTheSignalsNorTheStop) {
    const std::string trace = log_path + ".trace";
    auto server = start({"--drain-timeout", "1", "--trace", trace});
    ASSERT_EQ(::mkfifo((trace + ".tmp").c_str(), 0600), 0);
    for (std::size_t times = 1; times <= 2; ++times) {
        ASSERT_EQ(::kill(server->process().pid(), SIGUSR1), 0);
        EXPECT_TRUE(logged([&] { return server->log(); }, "Trace (SIGUSR1): cannot write the trace to " + trace, times))
            << server->log();
    }
    {
        Connection client = Connection::open("127.0.0.1", server->port());
        EXPECT_TRUE(answered_within(client, beautiful, "Ugly.", 5s));
    }
    const auto stopping = Clock::now();
    EXPECT_EQ(server->process().stop(SIGTERM, 8s), 0) << server->log();
    EXPECT_LT(Clock::now() - stopping, 2s);
    EXPECT_EQ(count(server->log(), "Trace (at exit): cannot write the trace to " + trace), 1u) << server->log();
    std::remove((trace + ".tmp").c_str());
    std::remove(trace.c_str());
}

INSTANTIATE_TEST_SUITE_P(Reload, EveryArchitecture, ::testing::ValuesIn(conformance_variants),
                         [](const ::testing::TestParamInfo<ServerVariant>& info) { return info.param.name; });

std::vector<ServerVariant> log_pipe_variants() {
    std::vector<ServerVariant> chosen;
    for (const ServerVariant& variant : conformance_variants) {
        for (const std::string_view name : {"single", "threaded", "prefork", "epoll"}) {
            if (variant.name == name) chosen.push_back(variant);
        }
    }
    return chosen;
}

INSTANTIATE_TEST_SUITE_P(Reload, LogPipe, ::testing::ValuesIn(log_pipe_variants()),
                         [](const ::testing::TestParamInfo<ServerVariant>& info) { return info.param.name; });

// inetd nowait (systemd-socket-activate --inetd --accept): the one-client process lives through
// SIGHUP, reopens its log and answers its client's next question from the new table.
TEST(ReloadInetd, HangupInTheOneClientModeReloadsAndKeepsServing) {
    const std::string stem = ::testing::TempDir() + "zen-reload-inetd-" + std::to_string(::getpid());
    const std::string log = stem + ".log";
    const std::string table = stem + ".table";
    std::remove(log.c_str());
    std::remove((log + ".1").c_str());
    write_file(table, old_table);
    const std::uint16_t port = free_loopback_port();
    auto activator = Process::start({"systemd-socket-activate", "-l", "127.0.0.1:" + std::to_string(port), "--accept",
                                     "--inetd", zen_binary(), "serve", "--inetd", "--log-file", log, "--aphorisms",
                                     table});
    ASSERT_TRUE(activator->wait_for_output("Listening on 127.0.0.1:" + std::to_string(port))) << activator->output();
    Connection client = Connection::open("127.0.0.1", port);
    EXPECT_TRUE(answered_within(client, "Now is better than?", "Never.", 10s));
    std::vector<pid_t> zen;
    EXPECT_TRUE(wait_until([&] { return (zen = activator->children()).size() == 1; }));
    ASSERT_EQ(zen.size(), 1u);

    ASSERT_EQ(std::rename(log.c_str(), (log + ".1").c_str()), 0);
    replace_file(table, new_table);
    ASSERT_EQ(::kill(zen[0], SIGHUP), 0);
    EXPECT_TRUE(wait_until([&] {
        return read_file(log).find("Reloaded on SIGHUP: log reopened, 3 aphorisms from " + table) != std::string::npos;
    })) << read_file(log) << read_file(log + ".1");
    EXPECT_TRUE(answered_within(client, "Now is better than?", "Right now.", 10s));
    client.shutdown_write();
    EXPECT_TRUE(client.receive_until_eof(10s).eof);
    EXPECT_TRUE(wait_until([&] { return read_file(log).find("has closed") != std::string::npos; })) << read_file(log);
    EXPECT_NE(read_file(log + ".1").find("Accepted connection from"), std::string::npos);
    for (const std::string& path : {log, log + ".1", table}) std::remove(path.c_str());
}

// deploy/logrotate/zen, run by the real logrotate against a real server: its postrotate finds the
// server and sends the HUP, and the lines go on in the new file.
TEST(ReloadLogrotate, TheDeploySnippetRotatesAndTheServerReopens) {
    // mkdtemp's 0700: logrotate refuses to rotate in a directory others may write to.
    std::string directory = ::testing::TempDir() + "zen-logrotate-XXXXXX";
    ASSERT_NE(::mkdtemp(directory.data()), nullptr);
    const std::string log = directory + "/zen.log";
    std::string config = read_file(source_dir() + "/deploy/logrotate/zen");
    ASSERT_NE(config.find("/var/log/zen/zen.log"), std::string::npos);
    for (auto at = config.find("/var/log/zen/zen.log"); at != std::string::npos; at = config.find("/var/log/zen/zen.log"))
        config.replace(at, std::string_view("/var/log/zen/zen.log").size(), log);
    write_file(directory + "/logrotate.conf", config);

    auto server = Zen::start({}, log);  // --arch single: one connection at a time
    std::string first;
    {
        Connection client = Connection::open("127.0.0.1", server->port(), marked_client);
        EXPECT_TRUE(answered_within(client, beautiful, "Ugly.", 5s));
        first = accepted_line(client);
    }
    EXPECT_TRUE(wait_until([&] { return read_file(log).find(first) != std::string::npos; }));
    const RunResult rotated = run_command(
        {"logrotate", "--force", "--state", directory + "/state", directory + "/logrotate.conf"}, 30s);
    EXPECT_EQ(rotated.exit_code, 0) << "logrotate (make peer-deps installs it): " << rotated.out << rotated.err;
    EXPECT_TRUE(wait_until([&] { return read_file(log).find("Reloaded on SIGHUP: log reopened") != std::string::npos; }))
        << read_file(log) << read_file(log + ".1");
    std::string second;
    {
        Connection client = Connection::open("127.0.0.1", server->port(), marked_client);
        EXPECT_TRUE(answered_within(client, beautiful, "Ugly.", 5s));
        second = accepted_line(client);
    }
    EXPECT_TRUE(wait_until([&] { return read_file(log).find(second) != std::string::npos; }));
    EXPECT_NE(read_file(log + ".1").find(first), std::string::npos) << read_file(log + ".1");
    EXPECT_EQ(read_file(log).find(first), std::string::npos);
    EXPECT_EQ(server->process().stop(SIGTERM), 0);
    for (const std::string name : {"zen.log", "zen.log.1", "logrotate.conf", "state"}) std::remove((directory + "/" + name).c_str());
    ::rmdir(directory.c_str());
}

}  // namespace
}  // namespace zen::test
