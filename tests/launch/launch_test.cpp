// Launch modes with the real tools: systemd's socket activation (Accept=no, Accept=yes), inetd's
// two modes through systemd-socket-activate --inetd, sd_notify, and passed sockets of the wrong
// kind.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "conformance/architectures.hpp"
#include "support/harness.hpp"

namespace zen::test {
namespace {

std::string read_file(const std::string& path) {
    std::ifstream in(path);
    std::ostringstream text;
    text << in.rdbuf();
    return text.str();
}

std::string temp_file(const std::string& stem) {
    return ::testing::TempDir() + "zen-launch-" + stem + "-" + std::to_string(::getpid());
}

// systemd-socket-activate listening on port, running `zen serve ARGS` as it is told.
std::unique_ptr<Process> activate(std::uint16_t port, std::vector<std::string> activate_flags,
                                  std::vector<std::string> serve_args) {
    std::vector<std::string> argv{"systemd-socket-activate", "-l", "127.0.0.1:" + std::to_string(port)};
    argv.insert(argv.end(), activate_flags.begin(), activate_flags.end());
    argv.push_back(zen_binary());
    argv.push_back("serve");
    argv.insert(argv.end(), serve_args.begin(), serve_args.end());
    auto process = Process::start(argv);
    EXPECT_TRUE(process->wait_for_output("Listening on 127.0.0.1:" + std::to_string(port))) << process->output();
    return process;
}

class AcceptNo : public ::testing::TestWithParam<ServerVariant> {};

TEST_P(AcceptNo, AdoptsThePassedListener) {
    const std::uint16_t port = free_loopback_port();
    auto server = activate(port, {}, GetParam().args);
    Connection client = Connection::open("127.0.0.1", port);
    EXPECT_TRUE(answered_within(client, "Beautiful is better than?", "Ugly.", 10s)) << server->output();
    EXPECT_TRUE(server->wait_for_output("Listening at ('127.0.0.1', " + std::to_string(port) + ")")) << server->output();
    client.close();
    EXPECT_EQ(server->stop(SIGTERM), 0) << server->output();
}

INSTANTIATE_TEST_SUITE_P(Launch, AcceptNo, ::testing::ValuesIn(adopting_variants),
                         [](const ::testing::TestParamInfo<ServerVariant>& info) { return info.param.name; });

TEST(Launch, AcceptYesServesEachConnectionInItsOwnProcess) {
    const std::uint16_t port = free_loopback_port();
    auto activator = activate(port, {"--accept"}, {});
    for (int i = 0; i < 2; ++i) {
        Connection client = Connection::open("127.0.0.1", port);
        EXPECT_TRUE(answered_within(client, "Simple is better than?Explicit is better than?", "Complex.Implicit.", 10s));
        client.shutdown_write();
        EXPECT_TRUE(client.receive_until_eof(10s).eof);
    }
    EXPECT_TRUE(activator->wait_for_output("has closed")) << activator->output();
    EXPECT_NE(activator->output().find("Child "), std::string::npos) << activator->output();
    EXPECT_EQ(activator->output().find("Listening at"), std::string::npos) << "a connection was served as a listener";
}

TEST(Launch, InetdNowaitLogsToItsFileNeverToTheClient) {
    const std::uint16_t port = free_loopback_port();
    const std::string log = temp_file("nowait.log");
    std::remove(log.c_str());
    auto activator = activate(port, {"--accept", "--inetd"}, {"--inetd", "--log-file", log});
    Connection client = Connection::open("127.0.0.1", port);
    client.send("Beautiful is better than?Simple is better than?");
    client.shutdown_write();
    const Drained got = client.receive_until_eof(10s);
    EXPECT_EQ(got.data, "Ugly.Complex.");  // nothing but the answers on the wire
    EXPECT_TRUE(got.eof);
    for (int i = 0; i < 500 && read_file(log).find("has closed") == std::string::npos; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_NE(read_file(log).find("Accepted connection from ('127.0.0.1', "), std::string::npos) << read_file(log);
    EXPECT_NE(read_file(log).find("has closed"), std::string::npos) << read_file(log);
    std::remove(log.c_str());
}

TEST(Launch, InetdNowaitAppliesAccessRulesBeforeReading) {
    const std::uint16_t port = free_loopback_port();
    const std::string log = temp_file("nowait-access.log");
    std::remove(log.c_str());
    auto activator = activate(port, {"--accept", "--inetd"}, {"--inetd", "--deny", "127.0.0.3/32", "--log-file", log});
    Connection admitted = Connection::open("127.0.0.1", port, "127.0.0.2");
    EXPECT_TRUE(answered_within(admitted, "Simple is better than?", "Complex.", 10s));
    Connection refused = Connection::open("127.0.0.1", port, "127.0.0.3");
    const Drained got = refused.receive_until_eof(10s);
    EXPECT_TRUE(got.data.empty());
    EXPECT_TRUE(got.eof || got.reset);
    for (int i = 0; i < 500 && read_file(log).find("refused") == std::string::npos; ++i) std::this_thread::sleep_for(10ms);
    EXPECT_NE(read_file(log).find("Client ('127.0.0.3', " + std::to_string(refused.local_port()) + ") refused: denied by --deny"),
              std::string::npos)
        << read_file(log);
    std::remove(log.c_str());
}

TEST(Launch, InetdWaitServesThenExitsByItselfAfterExitIdle) {
    const std::uint16_t port = free_loopback_port();
    const std::string log = temp_file("wait.log");
    std::remove(log.c_str());
    // Without --accept, systemd-socket-activate execs zen with the listener as fd 0.
    auto server = activate(port, {"--inetd"}, {"--inetd-wait", "--exit-idle", "1", "--log-file", log});
    {
        Connection client = Connection::open("127.0.0.1", port);
        EXPECT_TRUE(answered_within(client, "Explicit is better than?", "Implicit.", 10s));
    }
    EXPECT_EQ(server->wait_exit(10s), 0) << server->output() << read_file(log);
    EXPECT_NE(read_file(log).find("No connection for 1 s: exiting (--exit-idle)"), std::string::npos) << read_file(log);
    std::remove(log.c_str());
}

TEST(Launch, InetdWaitDefaultsToEightSecondsOfIdleness) {
    const RunResult help = run_zen({"serve", "--help"});
    EXPECT_NE(help.out.find("--inetd-wait: 8"), std::string::npos) << help.out;
}

TEST(Launch, InetdWithoutASocketOnFdZeroIsAClearError) {
    const std::string log = temp_file("notsocket.log");
    std::remove(log.c_str());
    const RunResult result = run_zen({"serve", "--inetd", "--log-file", log});  // fd 0 is /dev/null here
    EXPECT_EQ(result.exit_code, 2);
    EXPECT_TRUE(result.out.empty() && result.err.empty()) << "wrote to stdio: " << result.out << result.err;
    EXPECT_NE(read_file(log).find("fd 0 is not a socket"), std::string::npos) << read_file(log);
    std::remove(log.c_str());
}

TEST(Launch, InetdGivenAListenerSaysToUseInetdWait) {
    const std::uint16_t port = free_loopback_port();
    const std::string log = temp_file("wrongmode.log");
    std::remove(log.c_str());
    auto server = activate(port, {"--inetd"}, {"--inetd", "--log-file", log});
    Connection trigger = Connection::open("127.0.0.1", port);  // zen is started on the first connection
    EXPECT_EQ(server->wait_exit(10s), 2) << server->output();
    EXPECT_NE(read_file(log).find("use --inetd-wait"), std::string::npos) << read_file(log);
    std::remove(log.c_str());
}

TEST(Launch, ReuseportCannotUseAPassedListener) {
    const std::uint16_t port = free_loopback_port();
    auto server = activate(port, {}, {"--arch", "reuseport"});
    Connection trigger = Connection::open("127.0.0.1", port);  // zen is started on the first connection
    EXPECT_EQ(server->wait_exit(10s), 2) << server->output();
    EXPECT_NE(server->output().find("cannot use one passed by systemd"), std::string::npos) << server->output();
}

TEST(Launch, NotifiesSystemdWhenReady) {
    const int notify = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    const std::string path = temp_file("notify.sock");
    std::remove(path.c_str());
    std::snprintf(address.sun_path, sizeof address.sun_path, "%s", path.c_str());
    ASSERT_EQ(::bind(notify, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    ::setenv("NOTIFY_SOCKET", path.c_str(), 1);
    auto server = Server::start({});
    ::unsetenv("NOTIFY_SOCKET");
    timeval limit{5, 0};
    ::setsockopt(notify, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    char message[256] = {};
    const ssize_t n = ::recv(notify, message, sizeof message - 1, 0);
    ::close(notify);
    std::remove(path.c_str());
    ASSERT_GT(n, 0);
    EXPECT_NE(std::string(message, static_cast<std::size_t>(n)).find("READY=1"), std::string::npos);
}

// The real inetd (openbsd-inetd), in the foreground with a configuration of our own, running zen
// in both of its modes: nowait (one zen per connection) and wait (zen takes the listener and exits
// after --exit-idle; inetd then listens again and starts a new one for the next client).
TEST(RealInetd, NowaitAndWaitBothAnswer) {
    const std::uint16_t nowait_port = free_loopback_port();
    const std::uint16_t wait_port = free_loopback_port();
    const std::string nowait_log = temp_file("inetd-nowait.log");
    const std::string wait_log = temp_file("inetd-wait.log");
    const std::string config = temp_file("inetd.conf");
    std::remove(nowait_log.c_str());
    std::remove(wait_log.c_str());
    const std::string user = ::getpwuid(::geteuid())->pw_name;
    std::ofstream(config) << "127.0.0.1:" << nowait_port << " stream tcp nowait " << user << " " << zen_binary()
                          << " zen serve --inetd --log-file " << nowait_log << "\n"
                          << "127.0.0.1:" << wait_port << " stream tcp wait " << user << " " << zen_binary()
                          << " zen serve --inetd-wait --exit-idle 1 --log-file " << wait_log << "\n";
    auto inetd = Process::start({"inetd", "-i", config});
    ASSERT_TRUE(port_accepts(wait_port, 5s)) << "inetd did not listen (make deps installs openbsd-inetd): " << inetd->output();

    for (int i = 0; i < 2; ++i) {
        Connection client = Connection::open("127.0.0.1", nowait_port);
        EXPECT_TRUE(answered_within(client, "Beautiful is better than?", "Ugly.", 10s)) << inetd->output();
    }
    const auto exits = [&wait_log] {
        const std::string text = read_file(wait_log);
        std::size_t count = 0;
        for (std::size_t at = text.find("exiting (--exit-idle)"); at != std::string::npos;
             at = text.find("exiting (--exit-idle)", at + 1))
            ++count;
        return count;
    };
    for (std::size_t round = 1; round <= 2; ++round) {
        {
            Connection client = Connection::open("127.0.0.1", wait_port);
            EXPECT_TRUE(answered_within(client, "Explicit is better than?", "Implicit.", 10s)) << inetd->output();
        }
        // That zen exits after a second with no client; inetd listens again and starts a new one.
        for (int i = 0; i < 1000 && exits() < round; ++i) std::this_thread::sleep_for(10ms);
        EXPECT_EQ(exits(), round) << read_file(wait_log);
    }
    std::size_t accepted = 0;
    const std::string nowaited = read_file(nowait_log);
    for (std::size_t at = nowaited.find("Accepted connection"); at != std::string::npos;
         at = nowaited.find("Accepted connection", at + 1))
        ++accepted;
    EXPECT_EQ(accepted, 2u) << nowaited;
    EXPECT_EQ(inetd->stop(SIGTERM), 0) << inetd->output();  // inetd exits 0 on SIGTERM
    for (const std::string& path : {nowait_log, wait_log, config}) std::remove(path.c_str());
}

}  // namespace
}  // namespace zen::test
