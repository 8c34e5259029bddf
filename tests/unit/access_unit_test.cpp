#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>

#include "net/access.hpp"

namespace zen {
namespace {

SocketAddress peer(const char* text) {
    SocketAddress address;
    if (std::strchr(text, ':') == nullptr) {
        auto* sin = reinterpret_cast<sockaddr_in*>(&address.storage);
        sin->sin_family = AF_INET;
        ::inet_pton(AF_INET, text, &sin->sin_addr);
        address.length = sizeof(sockaddr_in);
    } else {
        auto* sin6 = reinterpret_cast<sockaddr_in6*>(&address.storage);
        sin6->sin6_family = AF_INET6;
        ::inet_pton(AF_INET6, text, &sin6->sin6_addr);
        address.length = sizeof(sockaddr_in6);
    }
    return address;
}

Cidr cidr(const char* text) {
    auto parsed = Cidr::parse(text);
    EXPECT_TRUE(parsed) << text << ": " << parsed.error();
    return parsed ? *parsed : Cidr{};
}

TEST(Cidr, Ipv4BlocksMatchIpv4AndMappedClients) {
    const Cidr loopback = cidr("127.0.0.0/8");
    EXPECT_TRUE(loopback.contains(peer("127.0.0.7")));
    EXPECT_TRUE(loopback.contains(peer("::ffff:127.0.0.7")));
    EXPECT_FALSE(loopback.contains(peer("128.0.0.1")));
    EXPECT_FALSE(loopback.contains(peer("::1")));
    const Cidr one = cidr("127.0.0.3");
    EXPECT_TRUE(one.contains(peer("127.0.0.3")));
    EXPECT_FALSE(one.contains(peer("127.0.0.2")));
    EXPECT_TRUE(cidr("10.1.2.3/23").contains(peer("10.1.3.200")));
    EXPECT_FALSE(cidr("10.1.2.3/23").contains(peer("10.1.4.1")));
}

TEST(Cidr, Ipv6Blocks) {
    EXPECT_TRUE(cidr("::1/128").contains(peer("::1")));
    EXPECT_FALSE(cidr("::1").contains(peer("::2")));
    EXPECT_TRUE(cidr("2001:db8::/32").contains(peer("2001:db8:1::5")));
    EXPECT_FALSE(cidr("2001:db8::/32").contains(peer("2001:db9::5")));
}

TEST(Cidr, AllMatchesEveryone) {
    const Cidr all = cidr("all");
    EXPECT_TRUE(all.contains(peer("1.2.3.4")));
    EXPECT_TRUE(all.contains(peer("::1")));
}

TEST(Cidr, BadBlocksAreErrors) {
    for (const char* bad : {"", "localhost", "127.0.0.1/33", "::1/129", "127.0.0.1/", "127.0.0.1/x", "1.2.3"}) {
        EXPECT_FALSE(Cidr::parse(bad)) << bad;
    }
}

TEST(Access, AllowComesBeforeDeny) {
    AccessRules rules;
    rules.allow.push_back(cidr("127.0.0.2"));
    rules.deny.push_back(cidr("all"));
    EXPECT_EQ(refusal(rules, peer("127.0.0.2")), "");
    EXPECT_NE(refusal(rules, peer("127.0.0.3")), "");
    AccessRules open;
    EXPECT_EQ(refusal(open, peer("127.0.0.3")), "");
}

TEST(Access, HostsTablesThroughLibwrap) {
    const std::string allow = ::testing::TempDir() + "zen-unit-allow-" + std::to_string(::getpid());
    const std::string deny = ::testing::TempDir() + "zen-unit-deny-" + std::to_string(::getpid());
    std::ofstream(allow) << "zen: 127.0.0.2\n";
    std::ofstream(deny) << "zen: ALL\n";
    AccessRules rules;
    rules.hosts_allow = allow;
    rules.hosts_deny = deny;
    EXPECT_EQ(refusal(rules, peer("127.0.0.2")), "");
    EXPECT_NE(refusal(rules, peer("127.0.0.3")), "");
    EXPECT_EQ(refusal(rules, peer("::ffff:127.0.0.2")), "");  // a dual-stack listener's IPv4 client
    rules.daemon_name = "other";  // the tables name zen: another daemon is not denied
    EXPECT_EQ(refusal(rules, peer("127.0.0.3")), "");
    std::remove(allow.c_str());
    std::remove(deny.c_str());
}

}  // namespace
}  // namespace zen

namespace zen {
namespace {

TEST(HostsTables, OnlyAllowAndDenyOptionsAreHonoured) {
    const char* refused[] = {
        "ALL: 127.0.0.2 : twist /bin/echo go away\n",
        "zen : ALL : spawn (/bin/echo %a) &\n",
        "zen: ALL: severity auth.info : allow\n",  // the first option decides
        "zen: ALL: banners /etc/banners\n",
        "zen: ALL: /bin/sh -c 'echo shell command'\n",  // without options support: a shell command
        "# a comment\nzen: [::1] [2001:db8::]/32 : \\\n  user nobody\n",  // continued, IPv6 patterns
    };
    for (const char* text : refused) {
        const auto checked = check_hosts_table_text("t", text);
        EXPECT_FALSE(checked) << text;
    }
    EXPECT_EQ(check_hosts_table_text("hosts.deny", "ALL: 127.0.0.2 : twist /bin/echo go away\n").error(),
              "hosts.deny: line 1: option 'twist': zen honours only ALLOW and DENY; libwrap would run anything "
              "else inside the server");
    EXPECT_EQ(check_hosts_table_text("t", "# one\n\nzen: ALL: \\\n  spawn x\n").error().rfind("t: line 3:", 0), 0u);
    const char* accepted[] = {
        "ALL: 127.0.0.2\n",
        "zen: 127.0.0.0/255.0.0.0 EXCEPT 127.0.0.3 : DENY\n",
        "zen: [::1] [2001:db8::]/32 : allow\n",
        "# twist in a comment is nothing\n\nzen: ALL\n",
        "zen: ALL \\\n  EXCEPT 127.0.0.9\n",
    };
    for (const char* text : accepted) {
        const auto checked = check_hosts_table_text("t", text);
        EXPECT_TRUE(checked) << text << ": " << checked.error();
    }
}

TEST(HostsTables, OnlyBoundedRegularFilesAreRead) {
    AccessRules rules;
    rules.hosts_deny = "/dev/zero";
    auto checked = check_hosts_tables(rules);
    ASSERT_FALSE(checked);
    EXPECT_EQ(checked.error(), "hosts table: /dev/zero is a character device, not a regular file");
    rules.hosts_deny = ::testing::TempDir();
    checked = check_hosts_tables(rules);
    ASSERT_FALSE(checked);
    EXPECT_NE(checked.error().find("is a directory"), std::string::npos) << checked.error();
    const std::string fifo = ::testing::TempDir() + "zen-hosts-fifo-" + std::to_string(::getpid());
    ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
    rules.hosts_deny = fifo;
    checked = check_hosts_tables(rules);  // returns at once: no writer is awaited
    ::unlink(fifo.c_str());
    ASSERT_FALSE(checked);
    EXPECT_NE(checked.error().find("is a FIFO"), std::string::npos) << checked.error();
    const std::string big = ::testing::TempDir() + "zen-hosts-big-" + std::to_string(::getpid());
    {
        std::ofstream file(big);
        file << std::string(max_hosts_table + 1, '#');
    }
    rules.hosts_deny = big;
    checked = check_hosts_tables(rules);
    std::remove(big.c_str());
    ASSERT_FALSE(checked);
    EXPECT_NE(checked.error().find("is larger than 1048576 bytes"), std::string::npos) << checked.error();
}

}  // namespace
}  // namespace zen
