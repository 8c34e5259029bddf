// Every command-line mistake in zen's own words: for each subcommand and the top level, a bad input
// and the whole line it must get on stderr (exit 2, nothing on stdout), and never a sentence of
// CLI11's (src/base/usage_errors.cpp).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "support/harness.hpp"

namespace zen::test {
namespace {

struct UsageError {
    std::vector<std::string> args;
    std::string line;  // the whole of stderr, without its newline
};

void PrintTo(const UsageError& row, std::ostream* out) {
    *out << "zen";
    for (const std::string& arg : row.args) *out << ' ' << arg;
}

const std::string arches =
    "single, threaded, per-client, prefork, poll, epoll, callbacks, chat, coroutines, reuseport or uring";

const std::vector<UsageError> rows = {
    // zen serve: a bad value of each kind.
    {{"serve", "--workers", "0"}, "zen serve: --workers: expected a number from 1 to 1024, got '0'"},
    {{"serve", "--workers", "many"}, "zen serve: --workers: expected a number from 1 to 1024, got 'many'"},
    {{"serve", "--workers", "1.5"}, "zen serve: --workers: expected a number from 1 to 1024, got '1.5'"},
    {{"serve", "--backlog", "70000"}, "zen serve: --backlog: expected a number from 1 to 65535, got '70000'"},
    {{"serve", "--max-question", "0"}, "zen serve: --max-question: expected a number from 1 to 1073741824, got '0'"},
    {{"serve", "--arch", "nope"}, "zen serve: --arch: expected one of " + arches + ", got 'nope'"},
    {{"serve", "--log-format", "xml"}, "zen serve: --log-format: expected text or json, got 'xml'"},
    {{"serve", "--hosts-allow", "/nonexistent/zen-hosts"},
     "zen serve: --hosts-allow: expected an existing file, got '/nonexistent/zen-hosts'"},
    {{"serve", "--hosts-deny", "/"}, "zen serve: --hosts-deny: expected a file, not a directory, got '/'"},
    {{"serve", "--allow", "1.2.3"},
     "zen serve: --allow: expected an IP address or CIDR block (e.g. 127.0.0.2/32, ::1/128, all), got '1.2.3'"},
    {{"serve", "--deny", "10.0.0.0/33"},
     "zen serve: --deny: expected a prefix length from 0 to 32 after the '/', got '10.0.0.0/33'"},
    {{"serve", "-p", "http"}, "zen serve: --port: expected a port number from 0 to 65535, got 'http'"},
    {{"serve", "-p", "70000"}, "zen serve: --port: expected a port number from 0 to 65535, got '70000'"},
    {{"serve", "--idle-timeout", "soon"}, "zen serve: --idle-timeout: expected seconds from 0 to 31536000, got 'soon'"},
    {{"serve", "--exit-idle", "-.5"}, "zen serve: --exit-idle: expected seconds from 0 to 31536000, got '-.5'"},
    {{"serve", "--quiet=3"}, "zen serve: --quiet: expected no value, got '3'"},
    {{"serve", "-p", "1", "-p", "2"}, "zen serve: --port: expected one value, got '1' and '2'"},
    // zen serve: unknown options, near a real one or not.
    {{"serve", "--worker", "3"}, "zen serve: unknown option --worker: did you mean --workers?"},
    {{"serve", "--wrokers", "3"}, "zen serve: unknown option --wrokers: did you mean --workers?"},
    {{"serve", "--work", "3"}, "zen serve: unknown option --work: did you mean --workers?"},
    {{"serve", "--max", "3"},
     "zen serve: unknown option --max: did you mean --max-question, --max-connections or --max-pending?"},
    {{"serve", "--bogus"}, "zen serve: unknown option --bogus"},
    {{"serve", "-x"}, "zen serve: unknown option -x"},
    // zen serve: a missing value, even when the next word is an option.
    {{"serve", "--workers", "-p", "1070"}, "zen serve: --workers needs a value"},
    {{"serve", "--workers"}, "zen serve: --workers needs a value"},
    {{"serve", "-p"}, "zen serve: --port needs a value"},
    {{"serve", "--aphorisms", "-p", "1070"}, "zen serve: --aphorisms needs a value"},
    // zen serve: options that exclude or need each other; an argument too many.
    {{"serve", "--inetd", "--inetd-wait"}, "zen serve: --inetd and --inetd-wait cannot be used together"},
    {{"serve", "--trusted-proxy", "10.0.0.0/8"}, "zen serve: --trusted-proxy needs --proxy-protocol"},
    {{"serve", "--proxy-header-timeout", "1"}, "zen serve: --proxy-header-timeout needs --proxy-protocol"},
    {{"serve", "127.0.0.1", "extra"}, "zen serve: unexpected argument 'extra'"},
    {{"serve", "a", "b", "c"}, "zen serve: unexpected arguments 'b' and 'c'"},

    // zen client
    {{"client", "-p", "0"}, "zen client: --port: expected a port number from 1 to 65535, got '0'"},
    {{"client", "--timeout", "0"}, "zen client: --timeout: expected seconds from 0.001 to 31536000, got '0'"},
    {{"client", "-e=3"}, "zen client: -e: expected no value, got '3'"},
    {{"client", "--timout", "1"}, "zen client: unknown option --timout: did you mean --timeout?"},
    {{"client", "--bogus"}, "zen client: unknown option --bogus"},
    {{"client", "--timeout"}, "zen client: --timeout needs a value"},
    {{"client", "-p", "-e"}, "zen client: --port needs a value"},
    {{"client", "127.0.0.1", "extra"}, "zen client: unexpected argument 'extra'"},

    // zen bench
    {{"bench", "-c", "0"}, "zen bench: --connections: expected a number from 1 to 1000000, got '0'"},
    {{"bench", "-t", "300"}, "zen bench: --threads: expected a number from 1 to 256, got '300'"},
    {{"bench", "-n", "many"}, "zen bench: --count: expected a number from 1 to 1000000000000, got 'many'"},
    {{"bench", "-P", "0"}, "zen bench: --pipeline: expected a number from 1 to 65536, got '0'"},
    {{"bench", "--connect-rate", "0"}, "zen bench: --connect-rate: expected a number from 1 to 1000000000, got '0'"},
    {{"bench", "--sweep", "1,x"}, "zen bench: --sweep: expected a number from 1 to 1000000, got 'x'"},
    {{"bench", "-d", "0"}, "zen bench: --duration: expected seconds from 0.01 to 31536000, got '0'"},
    {{"bench", "-r", "abc"},
     "zen bench: --rate: expected questions per second above 0 and at most 1e9 (leave -r out for a closed loop), "
     "got 'abc'"},
    {{"bench", "--json=yes"}, "zen bench: --json: expected no value, got 'yes'"},
    {{"bench", "--conections", "5"}, "zen bench: unknown option --conections: did you mean --connections?"},
    {{"bench", "--time", "1"}, "zen bench: unknown option --time: did you mean --timeout?"},
    {{"bench", "--bogus"}, "zen bench: unknown option --bogus"},
    {{"bench", "-c", "-t", "2"}, "zen bench: --connections needs a value"},
    {{"bench", "--sweep"}, "zen bench: --sweep needs a value"},
    {{"bench", "127.0.0.1", "extra"}, "zen bench: unexpected argument 'extra'"},

    // zen streamer
    {{"streamer", "--max-message", "0"}, "zen streamer: --max-message: expected a number from 1 to 4294967296, got '0'"},
    {{"streamer", "-p", "70000"}, "zen streamer: --port: expected a port number from 0 to 65535, got '70000'"},
    {{"streamer", "--time-limit", "x"}, "zen streamer: --time-limit: expected seconds from 0 to 31536000, got 'x'"},
    {{"streamer", "-c=1"}, "zen streamer: -c: expected no value, got '1'"},
    {{"streamer", "--max-mesage", "5"}, "zen streamer: unknown option --max-mesage: did you mean --max-message?"},
    {{"streamer", "--bogus"}, "zen streamer: unknown option --bogus"},
    {{"streamer", "--timeout"}, "zen streamer: --timeout needs a value"},
    {{"streamer", "127.0.0.1", "extra"}, "zen streamer: unexpected argument 'extra'"},

    // zen blocks
    {{"blocks", "--max-block", "x"}, "zen blocks: --max-block: expected a number from 1 to 4294967295, got 'x'"},
    {{"blocks", "--max-block", "4294967296"},
     "zen blocks: --max-block: expected a number from 1 to 4294967295, got '4294967296'"},
    {{"blocks", "--timeout", "-1"}, "zen blocks: --timeout: expected seconds from 0.001 to 31536000, got '-1'"},
    {{"blocks", "--max-blok", "5"}, "zen blocks: unknown option --max-blok: did you mean --max-block?"},
    {{"blocks", "--bogus"}, "zen blocks: unknown option --bogus"},
    {{"blocks", "-p", "--max-block", "5"}, "zen blocks: --port needs a value"},
    {{"blocks", "127.0.0.1", "extra"}, "zen blocks: unexpected argument 'extra'"},

    // zen itself
    {{"serv"}, "zen: unknown subcommand 'serv': did you mean serve?"},
    {{"clinet"}, "zen: unknown subcommand 'clinet': did you mean client?"},
    {{"dance"}, "zen: unknown subcommand 'dance': choose serve, client, streamer, blocks or bench"},
    {{"--verison"}, "zen: unknown option --verison: did you mean --version?"},
    {{"--bogus"}, "zen: unknown option --bogus"},
    {{"b"}, "zen: unknown subcommand 'b': choose serve, client, streamer, blocks or bench"},
};

// How CLI11 words its errors: none of it may reach a user.
const char* const cli11_phrases[] = {"The following argument", "not in range", "Could not convert", "Run with --help",
                                     "is required", "Excludes", "Requires", "not expected", "excludes", "requires",
                                     "At Most", "required but received", "missing", "is not an allowed value"};

// The line for a row: what it says, then where to look.
std::string expected_line(const UsageError& row) {
    const std::string who = row.line.substr(0, row.line.find(':'));
    return row.line + " (see " + who + " --help)\n";
}

class UsageErrorLine : public ::testing::TestWithParam<UsageError> {};

TEST_P(UsageErrorLine, IsTheWholeOfStderrInZensWords) {
    const RunResult result = run_zen(GetParam().args, 10s);
    EXPECT_EQ(result.exit_code, 2) << result.err;
    EXPECT_EQ(result.err, expected_line(GetParam()));
    EXPECT_EQ(result.out, "");
    for (const char* phrase : cli11_phrases) {
        EXPECT_EQ(result.err.find(phrase), std::string::npos) << "CLI11's \"" << phrase << "\" in " << result.err;
    }
}

INSTANTIATE_TEST_SUITE_P(UsageError, UsageErrorLine, ::testing::ValuesIn(rows),
                         [](const ::testing::TestParamInfo<UsageError>& info) {
                             return "row" + std::to_string(info.index);
                         });

// zen's own words since before this table, which an older test (tests/cli/cli_test.cpp) reads.
TEST(UsageError, NoSubcommandListsThem) {
    const RunResult result = run_zen({}, 10s);
    EXPECT_EQ(result.exit_code, 2);
    EXPECT_EQ(result.err,
              "zen: a subcommand is required: serve, client, streamer, blocks or bench (see zen --help)\n");
    EXPECT_EQ(result.out, "");
}

TEST(UsageError, HelpAndVersionStillExitZero) {
    for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
             {"--help"}, {"--version"}, {"serve", "--help"}, {"bench", "-h"}, {"serve", "--bogus", "--help"}}) {
        const RunResult result = run_zen(args, 10s);
        EXPECT_EQ(result.exit_code, 0) << args.front() << ": " << result.err;
        EXPECT_FALSE(result.out.empty());
        EXPECT_EQ(result.err, "");
    }
}

// Numbers are decimal: CLI11 alone reads "010" as octal 8 (the check saw 10, the option got 8).
TEST(UsageError, LeadingZerosAreDecimal) {
    const RunResult result = run_zen({"client", "-p", "010", "--timeout", "0.5"}, 10s);
    EXPECT_EQ(result.exit_code, 1) << result.err;
    EXPECT_NE(result.err.find("('127.0.0.1', 10)"), std::string::npos) << result.err;
}

}  // namespace
}  // namespace zen::test
