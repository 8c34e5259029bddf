// Access control over real sockets, in every architecture: a refused client is closed before a
// byte is read and gets no answer; an admitted one is served.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include "conformance/architectures.hpp"
#include "support/harness.hpp"

namespace zen::test {
namespace {

class Access : public ::testing::TestWithParam<ServerVariant> {
protected:
    std::unique_ptr<Server> start(std::vector<std::string> extra) {
        std::vector<std::string> args = GetParam().args;
        args.insert(args.end(), extra.begin(), extra.end());
        return Server::start(args);
    }

    // 127.0.0.2 is answered; 127.0.0.3 is refused: no answer, a close, and a log line.
    static void expect_only_127_0_0_2(Server& server) {
        {
            // Closed before the next client: --arch single serves one at a time.
            Connection admitted = Connection::open("127.0.0.1", server.port(), "127.0.0.2");
            EXPECT_TRUE(answered_within(admitted, "Simple is better than?", "Complex.", 10s));
        }
        Connection refused = Connection::open("127.0.0.1", server.port(), "127.0.0.3");
        try {
            refused.send("Simple is better than?");
        } catch (const std::exception&) {
            // already reset: as refused as it gets
        }
        const Drained got = refused.receive_until_eof(10s);
        EXPECT_TRUE(got.data.empty()) << got.data;
        EXPECT_TRUE(got.eof || got.reset) << "the refused client was not closed";
        EXPECT_TRUE(server.wait_for_log("Client ('127.0.0.3', " + std::to_string(refused.local_port()) + ") refused"))
            << server.log();
        EXPECT_EQ(server.log().find("Accepted connection from ('127.0.0.3'"), std::string::npos) << server.log();
    }
};

TEST_P(Access, DenyCidr) {
    auto server = start({"--deny", "127.0.0.3/32"});
    expect_only_127_0_0_2(*server);
}

TEST_P(Access, AllowThenDenyAll) {
    auto server = start({"--allow", "127.0.0.2", "--deny", "all"});
    expect_only_127_0_0_2(*server);
}

TEST_P(Access, HostsAllowAndHostsDenyThroughLibwrap) {
    const std::string allow = ::testing::TempDir() + "zen-hosts-allow-" + GetParam().name + std::to_string(::getpid());
    const std::string deny = ::testing::TempDir() + "zen-hosts-deny-" + GetParam().name + std::to_string(::getpid());
    std::ofstream(allow) << "zen: 127.0.0.2\n";
    std::ofstream(deny) << "zen: ALL\n";
    auto server = start({"--hosts-allow", allow, "--hosts-deny", deny});
    expect_only_127_0_0_2(*server);
    std::remove(allow.c_str());
    std::remove(deny.c_str());
}

INSTANTIATE_TEST_SUITE_P(Architectures, Access, ::testing::ValuesIn(conformance_variants),
                         [](const ::testing::TestParamInfo<ServerVariant>& info) { return info.param.name; });

TEST(AccessCli, BadRulesAreUsageErrors) {
    for (const std::vector<std::string>& args : {std::vector<std::string>{"serve", "--allow", "localhost"},
                                                  std::vector<std::string>{"serve", "--deny", "10.0.0.0/40"},
                                                  std::vector<std::string>{"serve", "--hosts-allow", "/nonexistent/hosts.allow"}}) {
        const RunResult result = run_zen(args);
        EXPECT_EQ(result.exit_code, 2) << args[2];
        EXPECT_FALSE(result.err.empty());
    }
}

}  // namespace
}  // namespace zen::test
