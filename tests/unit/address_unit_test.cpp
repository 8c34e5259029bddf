#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <cstring>

#include "net/address.hpp"

namespace zen {
namespace {

SocketAddress ipv4(const char* text, std::uint16_t port) {
    SocketAddress address;
    auto* sin = reinterpret_cast<sockaddr_in*>(&address.storage);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    ::inet_pton(AF_INET, text, &sin->sin_addr);
    address.length = sizeof(sockaddr_in);
    return address;
}

SocketAddress ipv6(const char* text, std::uint16_t port) {
    SocketAddress address;
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&address.storage);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    ::inet_pton(AF_INET6, text, &sin6->sin6_addr);
    address.length = sizeof(sockaddr_in6);
    return address;
}

TEST(Address, FormatsLikePythonTuples) {
    EXPECT_EQ(format_address(ipv4("127.0.0.1", 1060)), "('127.0.0.1', 1060)");
    EXPECT_EQ(format_address(ipv6("::1", 1060)), "('::1', 1060, 0, 0)");
    EXPECT_EQ(format_address(ipv6("::ffff:127.0.0.7", 41285)), "('127.0.0.7', 41285)");
    EXPECT_EQ(format_address("", 1060), "('', 1060)");
    // IPv4 is formatted by hand (not inet_ntop): every octet width, the ends of both ranges.
    EXPECT_EQ(format_address(ipv4("0.0.0.0", 0)), "('0.0.0.0', 0)");
    EXPECT_EQ(format_address(ipv4("255.255.255.255", 65535)), "('255.255.255.255', 65535)");
    EXPECT_EQ(format_address(ipv4("198.18.10.9", 9)), "('198.18.10.9', 9)");
    EXPECT_EQ(format_address(ipv6("::ffff:255.0.99.100", 80)), "('255.0.99.100', 80)");
}

TEST(Address, EmptyHostForAServerIsBothWildcardsIpv6First) {
    auto addresses = resolve("", 1060, true);
    ASSERT_TRUE(addresses) << addresses.error();
    ASSERT_EQ(addresses->size(), 2u);
    EXPECT_EQ((*addresses)[0].family(), AF_INET6);
    EXPECT_EQ(format_address((*addresses)[0]), "('::', 1060, 0, 0)");
    EXPECT_EQ(format_address((*addresses)[1]), "('0.0.0.0', 1060)");
}

TEST(Address, EmptyHostForAClientIsAnError) {
    EXPECT_FALSE(resolve("", 1060, false));
}

TEST(Address, Literals) {
    auto v4 = resolve("127.0.0.1", 80, true);
    ASSERT_TRUE(v4) << v4.error();
    EXPECT_EQ(format_address(v4->front()), "('127.0.0.1', 80)");
    for (const char* host : {"::1", "[::1]"}) {
        auto v6 = resolve(host, 443, false);
        ASSERT_TRUE(v6) << host << ": " << v6.error();
        EXPECT_EQ(format_address(v6->front()), "('::1', 443, 0, 0)") << host;
        EXPECT_EQ(address_port(v6->front()), 443);
    }
}

TEST(Address, UnresolvableNameIsAnErrorNamingIt) {
    auto addresses = resolve("no-such-host.invalid", 1060, true);
    ASSERT_FALSE(addresses);
    EXPECT_NE(addresses.error().find("no-such-host.invalid"), std::string::npos) << addresses.error();
}

}  // namespace
}  // namespace zen
