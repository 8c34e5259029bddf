// The command line as a user meets it: help, exit codes, one-line errors, `zen client`, and
// interoperation with Python peers written like the book's programs.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <regex>
#include <set>
#include <thread>

#include "support/harness.hpp"

namespace zen::test {
namespace {

std::size_t line_count(const std::string& text) { return std::count(text.begin(), text.end(), '\n'); }

// A port that nothing listens on: bound (so no one else takes it) but never listening.
class ClosedPort {
public:
    ClosedPort() {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in address{};
        address.sin_family = AF_INET;
        address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address);
        socklen_t length = sizeof address;
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &length);
        port_ = ntohs(address.sin_port);
    }
    ~ClosedPort() { ::close(fd_); }
    std::uint16_t port() const { return port_; }

private:
    int fd_ = -1;
    std::uint16_t port_ = 0;
};

TEST(Cli, HelpListsTheSubcommands) {
    const RunResult result = run_zen({"--help"});
    EXPECT_EQ(result.exit_code, 0);
    EXPECT_NE(result.out.find("serve"), std::string::npos) << result.out;
    EXPECT_NE(result.out.find("client"), std::string::npos) << result.out;
    EXPECT_NE(result.out.find("streamer"), std::string::npos) << result.out;
    EXPECT_NE(result.out.find("blocks"), std::string::npos) << result.out;
}

TEST(Cli, StartUpFilesMustBeBoundedRegularFilesWithNoCommandsToRun) {
    const std::string twist = ::testing::TempDir() + "zen-cli-twist-" + std::to_string(::getpid());
    {
        std::ofstream file(twist);
        file << "ALL: 127.0.0.2 : twist /bin/echo go away\n";
    }
    const std::vector<std::vector<std::string>> bad = {
        {"--aphorisms", "/dev/zero"}, {"--aphorisms", "/"}, {"--hosts-allow", "/dev/zero"}, {"--hosts-deny", twist}};
    for (const auto& options : bad) {
        std::vector<std::string> args = {"serve", "-p", "0"};
        args.insert(args.end(), options.begin(), options.end());
        const RunResult result = run_zen(args, 10s);
        EXPECT_EQ(result.exit_code, 2) << options[1] << ": " << result.err;
        EXPECT_EQ(result.err.rfind("zen serve: ", 0), 0u) << result.err;
        EXPECT_EQ(std::count(result.err.begin(), result.err.end(), '\n'), 1) << result.err;
        EXPECT_LT(result.err.size(), 300u) << result.err;
        EXPECT_EQ(result.out.find("Listening"), std::string::npos) << result.out;
    }
    std::remove(twist.c_str());
}

TEST(Cli, ATimeoutBelowAMillisecondIsOneMillisecondNotNever) {
    // Timers work in whole milliseconds; 0.0004 s used to round to 0, which means "never".
    auto server = Server::start({"--question-timeout", "0.0004", "--idle-timeout", "60"});
    Connection client = Connection::open("127.0.0.1", server->port());
    client.send("Beautiful is");
    const Drained got = client.receive_until_eof(10s);
    EXPECT_TRUE(got.eof || got.reset);
    EXPECT_TRUE(server->wait_for_log("question not finished within 1 ms")) << server->log();
}

TEST(Cli, StreamerAndBlocksHelp) {
    for (const char* name : {"streamer", "blocks"}) {
        const RunResult result = run_zen({name, "--help"});
        EXPECT_EQ(result.exit_code, 0) << name;
        EXPECT_NE(result.out.find("-c"), std::string::npos) << result.out;
        EXPECT_NE(result.out.find(std::string(name) == "blocks" ? "--max-block" : "--max-message"), std::string::npos)
            << result.out;
    }
}

TEST(Cli, ServeHelpNamesEveryOptionAndArchitecture) {
    const RunResult result = run_zen({"serve", "--help"});
    EXPECT_EQ(result.exit_code, 0);
    for (const char* word : {"--arch", "single", "--port", "--backlog", "--aphorisms", "--max-question",
                             "--max-pending", "--idle-timeout", "--question-timeout", "--quiet", "--log-format",
                             "threaded", "per-client", "prefork", "--workers", "--delay", "--wait", "--exit-idle",
                             "--drain-timeout"}) {
        EXPECT_NE(result.out.find(word), std::string::npos) << word << " missing from:\n" << result.out;
    }
}

TEST(Cli, ClientHelp) {
    const RunResult result = run_zen({"client", "--help"});
    EXPECT_EQ(result.exit_code, 0);
    EXPECT_NE(result.out.find("-e"), std::string::npos) << result.out;
}

TEST(Cli, VersionPrintsAVersion) {
    const RunResult result = run_zen({"--version"});
    EXPECT_EQ(result.exit_code, 0);
    EXPECT_TRUE(std::regex_search(result.out, std::regex(R"(\d+\.\d+\.\d+)"))) << result.out;
}

struct UsageCase {
    std::vector<std::string> args;
    std::string expected;  // a piece of the one-line message
};

void PrintTo(const UsageCase& usage, std::ostream* out) {
    *out << "zen";
    for (const std::string& arg : usage.args) *out << ' ' << arg;
}

class UsageErrors : public ::testing::TestWithParam<UsageCase> {};

TEST_P(UsageErrors, ExitTwoWithOneLineNamingTheProblem) {
    const RunResult result = run_zen(GetParam().args);
    EXPECT_EQ(result.exit_code, 2) << result.err;
    EXPECT_EQ(line_count(result.err), 1u) << result.err;
    EXPECT_NE(result.err.find(GetParam().expected), std::string::npos) << result.err;
    EXPECT_TRUE(result.out.empty()) << result.out;
}

INSTANTIATE_TEST_SUITE_P(
    Cli, UsageErrors,
    ::testing::Values(UsageCase{{}, "subcommand is required"},
                      UsageCase{{"dance"}, "dance"},
                      UsageCase{{"serve", "--bogus"}, "--bogus"},
                      UsageCase{{"serve", "-p", "70000"}, "70000"},
                      UsageCase{{"serve", "-p", "http"}, "http"},
                      UsageCase{{"serve", "--arch", "nope"}, "nope"},
                      UsageCase{{"serve", "--backlog", "0"}, "backlog"},
                      UsageCase{{"serve", "--max-question", "0"}, "max-question"},
                      UsageCase{{"serve", "--idle-timeout", "-1"}, "idle-timeout"},
                      UsageCase{{"serve", "--log-format", "xml"}, "xml"},
                      UsageCase{{"serve", "--workers", "0"}, "--workers"},
                      UsageCase{{"serve", "--delay", "soon"}, "soon"},
                      UsageCase{{"serve", "--exit-idle", "-2"}, "--exit-idle"},
                      UsageCase{{"serve", "--max-question", "10"}, "longest aphorism"},
                      UsageCase{{"serve", "no-such-host.invalid"}, "no-such-host.invalid"},
                      UsageCase{{"serve", "--aphorisms", "/nonexistent/zen-aphorisms"}, "/nonexistent/zen-aphorisms"},
                      UsageCase{{"client", "-p", "0"}, "0"},
                      UsageCase{{"client", "no-such-host.invalid"}, "no-such-host.invalid"}),
    [](const ::testing::TestParamInfo<UsageCase>& info) { return "case" + std::to_string(info.index); });

TEST(Cli, MalformedAphorismFileIsAStartupErrorNamingTheLine) {
    const std::string path = ::testing::TempDir() + "zen-cli-bad-aphorisms-" + std::to_string(::getpid()) + ".txt";
    {
        std::ofstream file(path);
        file << "Beautiful is better than? Ugly.\n# fine so far\nThis line has no question mark.\n";
    }
    const RunResult result = run_zen({"serve", "-p", "0", "--aphorisms", path});
    std::remove(path.c_str());
    EXPECT_EQ(result.exit_code, 2);
    EXPECT_EQ(line_count(result.err), 1u) << result.err;
    EXPECT_NE(result.err.find(path + ": line 3:"), std::string::npos) << result.err;
}

TEST(Cli, PortInUseExitsOneSayingSo) {
    auto first = Server::start({});
    const RunResult second = run_zen({"serve", "-p", std::to_string(first->port())});
    EXPECT_EQ(second.exit_code, 1);
    EXPECT_EQ(line_count(second.err), 1u) << second.err;
    EXPECT_NE(second.err.find("Address already in use"), std::string::npos) << second.err;
    EXPECT_NE(second.err.find("('127.0.0.1', " + std::to_string(first->port()) + ")"), std::string::npos)
        << second.err;
}

TEST(Cli, UserDropsPrivilegesAfterBinding) {
    if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch users";
    auto server = Server::start({"--user", "nobody"});
    std::ifstream status("/proc/" + std::to_string(server->process().pid()) + "/status");
    std::string line;
    std::string uid;
    while (std::getline(status, line)) {
        if (line.rfind("Uid:", 0) == 0) uid = line;
    }
    EXPECT_TRUE(std::regex_search(uid, std::regex(R"(Uid:\s+65534\s+65534\s+65534)"))) << uid;
    const RunResult client = run_zen({"client", "-p", std::to_string(server->port())});
    EXPECT_EQ(client.exit_code, 0) << client.err;
}

TEST(Cli, UnknownUserIsAnErrorExitOne) {
    const RunResult result = run_zen({"serve", "-p", "0", "--user", "no-such-user-zen"});
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_NE(result.err.find("no user 'no-such-user-zen'"), std::string::npos) << result.err;
}

TEST(Cli, ClientGetsThreeAnswersInTheBooksFormat) {
    auto server = Server::start({});
    const RunResult result = run_zen({"client", "127.0.0.1", "-p", std::to_string(server->port())});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    const std::regex line(R"(^b'(Beautiful|Explicit|Simple) is better than\?' b'(Ugly|Implicit|Complex)\.'$)");
    std::istringstream lines(result.out);
    std::string text;
    std::set<std::string> asked;
    while (std::getline(lines, text)) {
        std::smatch match;
        ASSERT_TRUE(std::regex_match(text, match, line)) << text;
        const std::string pair = match[1].str() + "/" + match[2].str();
        EXPECT_TRUE(pair == "Beautiful/Ugly" || pair == "Explicit/Implicit" || pair == "Simple/Complex") << pair;
        asked.insert(match[1].str());
    }
    EXPECT_EQ(asked.size(), 3u) << result.out;
}

TEST(Cli, ClientAsksInRandomOrder) {
    auto server = Server::start({"--quiet"});
    std::set<std::string> orders;
    for (int i = 0; i < 30 && orders.size() < 2; ++i) {
        orders.insert(run_zen({"client", "-p", std::to_string(server->port())}).out);
    }
    EXPECT_GE(orders.size(), 2u) << "30 runs asked in one order only";
}

TEST(Cli, ClientWithDashEMakesTheServerLogTheAbandonedQuestionAndKeepServing) {
    auto server = Server::start({});
    const RunResult result = run_zen({"client", "-e", "-p", std::to_string(server->port())});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_TRUE(server->wait_for_log("sent b'Beautiful is better than' but then closed")) << server->log();
    const RunResult again = run_zen({"client", "-p", std::to_string(server->port())});
    EXPECT_EQ(again.exit_code, 0) << again.err;
    EXPECT_EQ(line_count(again.out), 3u) << again.out;
}

TEST(Cli, ClientOverIpv6) {
    auto server = Server::start({}, "::1");
    const RunResult result = run_zen({"client", "::1", "-p", std::to_string(server->port())});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(line_count(result.out), 3u) << result.out;
}

TEST(Cli, ClientToAClosedPortExitsOneNamingAddressAndReason) {
    ClosedPort closed;
    const RunResult result = run_zen({"client", "127.0.0.1", "-p", std::to_string(closed.port())});
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_EQ(line_count(result.err), 1u) << result.err;
    EXPECT_NE(result.err.find("('127.0.0.1', " + std::to_string(closed.port()) + ")"), std::string::npos) << result.err;
    EXPECT_NE(result.err.find("Connection refused"), std::string::npos) << result.err;
}

TEST(Cli, ClientGivesUpOnASilentServerAtItsTimeout) {
    // A listener that never answers: the client must not hang.
    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    ASSERT_EQ(::listen(listener, 4), 0);
    socklen_t length = sizeof address;
    ::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length);
    const RunResult result =
        run_zen({"client", "-p", std::to_string(ntohs(address.sin_port)), "--timeout", "0.5"}, 10s);
    ::close(listener);
    EXPECT_EQ(result.exit_code, 1);
    EXPECT_NE(result.err.find("timed out"), std::string::npos) << result.err;
}

TEST(Interop, PythonClientLikeTheBooksGetsItsAnswersFromZen) {
    auto server = Server::start({});
    const RunResult result = run_command(
        {"python3", source_dir() + "/tests/interop/python_client.py", "127.0.0.1", std::to_string(server->port())});
    ASSERT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(result.out,
              "b'Beautiful is better than?' b'Ugly.'\n"
              "b'Explicit is better than?' b'Implicit.'\n"
              "b'Simple is better than?' b'Complex.'\n");
    EXPECT_TRUE(server->wait_for_log("has closed")) << server->log();
}

TEST(Interop, ZenClientGetsItsAnswersFromAPythonServerLikeTheBooks) {
    const std::string port_file = ::testing::TempDir() + "zen-interop-port-" + std::to_string(::getpid());
    std::remove(port_file.c_str());
    auto python = Process::start({"python3", source_dir() + "/tests/interop/python_server.py", port_file});
    std::string port;
    for (int i = 0; i < 1000 && port.empty(); ++i) {
        std::ifstream in(port_file);
        std::getline(in, port);
        if (port.empty()) std::this_thread::sleep_for(10ms);
    }
    std::remove(port_file.c_str());
    ASSERT_FALSE(port.empty()) << python->output();
    const RunResult result = run_zen({"client", "127.0.0.1", "-p", port});
    EXPECT_EQ(result.exit_code, 0) << result.err;
    EXPECT_EQ(line_count(result.out), 3u) << result.out;
    EXPECT_NE(result.out.find("b'Simple is better than?' b'Complex.'"), std::string::npos) << result.out;
    EXPECT_EQ(python->wait_exit(10s), 0) << python->output();
    EXPECT_NE(python->output().find("has closed"), std::string::npos) << python->output();
}

}  // namespace
}  // namespace zen::test
