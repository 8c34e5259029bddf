// The PROXY protocol reader and gate, fed bytes in memory: whole, one byte at a time, and every
// way the specification says a header can be wrong.
#include <gtest/gtest.h>
#include <arpa/inet.h>

#include <string>
#include <vector>

#include "net/proxy_protocol.hpp"

namespace zen {
namespace {

using Status = ProxyHeaderReader::Status;

std::string v2(unsigned char version_command, unsigned char family, std::string block) {
    std::string header("\r\n\r\n\0\r\nQUIT\n", 12);
    header += static_cast<char>(version_command);
    header += static_cast<char>(family);
    header += static_cast<char>(block.size() >> 8);
    header += static_cast<char>(block.size() & 0xff);
    return header + block;
}

std::string ipv4_block(const char* source, std::uint16_t source_port, const char* destination, std::uint16_t port) {
    std::string block(12, '\0');
    inet_pton(AF_INET, source, block.data());
    inet_pton(AF_INET, destination, block.data() + 4);
    block[8] = static_cast<char>(source_port >> 8);
    block[9] = static_cast<char>(source_port & 0xff);
    block[10] = static_cast<char>(port >> 8);
    block[11] = static_cast<char>(port & 0xff);
    return block;
}

ProxyHeaderReader read_whole(std::string_view bytes) {
    ProxyHeaderReader reader;
    reader.feed(bytes);
    return reader;
}

// Fed one byte at a time, the reader must reach the same verdict and never decide early.
ProxyHeaderReader read_bytewise(std::string_view bytes) {
    ProxyHeaderReader reader;
    for (char c : bytes)
        if (reader.feed(std::string_view(&c, 1)) != Status::need_more) break;
    return reader;
}

TEST(ProxyHeader, Version1Tcp4) {
    const std::string bytes = "PROXY TCP4 127.0.0.7 127.0.0.1 51234 1060\r\nBeautiful is better than?";
    for (const auto& reader : {read_whole(bytes), read_bytewise(bytes)}) {
        ASSERT_EQ(reader.status(), Status::header) << reader.error();
        EXPECT_TRUE(reader.relayed());
        EXPECT_EQ(format_address(reader.source()), "('127.0.0.7', 51234)");
    }
    EXPECT_EQ(read_whole(bytes).remainder(), "Beautiful is better than?");
}

TEST(ProxyHeader, TakingTheRemainderLeavesNothingBehind) {
    ProxyHeaderReader reader;
    const std::string question(10'000, 'x');
    ASSERT_EQ(reader.feed("PROXY TCP4 127.0.0.7 127.0.0.1 51234 1060\r\n" + question), Status::header);
    EXPECT_EQ(reader.take_remainder(), question);
    EXPECT_EQ(reader.remainder(), "");
    EXPECT_EQ(reader.take_remainder(), "");
}

TEST(ProxyHeader, Version1Tcp6AndUnknown) {
    auto reader = read_whole("PROXY TCP6 ::1 ::1 40000 1060\r\n");
    ASSERT_EQ(reader.status(), Status::header) << reader.error();
    EXPECT_EQ(format_address(reader.source()), "('::1', 40000, 0, 0)");
    reader = read_whole("PROXY UNKNOWN\r\n");
    ASSERT_EQ(reader.status(), Status::header);
    EXPECT_FALSE(reader.relayed());
    reader = read_whole("PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n");
    EXPECT_EQ(reader.status(), Status::header);
}

TEST(ProxyHeader, Version1IsStrict) {
    const char* bad[] = {
        "PROXY TCP4 127.0.0.7 127.0.0.1 51234 1060\n",     // no CR
        "PROXY TCP4 127.0.0.7 127.0.0.1 51234\r\n",        // a port missing
        "PROXY TCP4  127.0.0.7 127.0.0.1 51234 1060\r\n",  // two spaces
        "PROXY TCP4 ::1 127.0.0.1 51234 1060\r\n",         // IPv6 in TCP4
        "PROXY TCP6 127.0.0.7 ::1 51234 1060\r\n",         // IPv4 in TCP6
        "PROXY TCP4 127.0.0.7 127.0.0.1 65536 1060\r\n",   // port too big
        "PROXY TCP4 127.0.0.7 127.0.0.1 051234 1060\r\n",  // leading zero
        "PROXY TCP4 127.0.0.7 127.0.0.1 -1 1060\r\n",
        "PROXY UDP4 127.0.0.7 127.0.0.1 51234 1060\r\n",
        "PROXY TCP4 127.0.0.7 127.0.0.1 51234 1060 extra\r\n",
        "PROXY TCP4 127.0.0.7\r127.0.0.1 51234 1060\r\n",
    };
    for (const char* header : bad) {
        EXPECT_EQ(read_whole(header).status(), Status::invalid) << header;
        EXPECT_EQ(read_bytewise(header).status(), Status::invalid) << header;
    }
}

TEST(ProxyHeader, Version1RefusesBytesThatAreNotPrintableAscii) {
    // inet_pton stops at a NUL: without this check the first would pass for 127.0.0.7.
    const std::string with_nul("PROXY TCP4 127.0.0.7\0junk 127.0.0.1 51234 1060\r\n", 48);
    const std::string with_tab = "PROXY TCP4 127.0.0.7\t127.0.0.1 51234 1060\r\n";
    const std::string with_high = "PROXY TCP4 127.0.0.7 127.0.0.1 51234 1060\xc3\xa9\r\n";
    for (const std::string& header : {with_nul, with_tab, with_high}) {
        const auto reader = read_whole(header);
        EXPECT_EQ(reader.status(), Status::invalid) << header;
        EXPECT_EQ(reader.error(), "v1 line has a byte that is not printable ASCII");
        EXPECT_EQ(read_bytewise(header).status(), Status::invalid) << header;
    }
}

TEST(ProxyHeader, Version1LineIsAtMost107Bytes) {
    // The longest legal line: TCP6 with two full-length addresses and five-digit ports.
    const std::string longest =
        "PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n";
    ASSERT_EQ(longest.size(), 104u);
    EXPECT_EQ(read_whole(longest).status(), Status::header);
    const std::string endless = "PROXY TCP4 " + std::string(200, '1');
    const auto reader = read_bytewise(endless);
    EXPECT_EQ(reader.status(), Status::invalid);
    EXPECT_NE(reader.error().find("107"), std::string::npos);
}

TEST(ProxyHeader, Version2Tcp4WithTlvsAfterTheAddresses) {
    const std::string block = ipv4_block("127.0.0.7", 40001, "127.0.0.1", 1060) + std::string("\x04\x00\x01\x00", 4);
    const std::string bytes = v2(0x21, 0x11, block) + "Simple is better than?";
    for (const auto& reader : {read_whole(bytes), read_bytewise(bytes)}) {
        ASSERT_EQ(reader.status(), Status::header) << reader.error();
        EXPECT_EQ(format_address(reader.source()), "('127.0.0.7', 40001)");
    }
    EXPECT_EQ(read_whole(bytes).remainder(), "Simple is better than?");
}

TEST(ProxyHeader, Version2RefusesATlvLongerThanTheHeader) {
    const std::string addresses = ipv4_block("127.0.0.7", 40001, "127.0.0.1", 1060);
    // A TLV that claims 16 bytes of value where 1 follows; one cut inside its 3-byte head.
    for (const std::string& tlvs : {std::string("\x04\x00\x10\x00", 4), std::string("\x04\x00", 2)}) {
        const auto reader = read_whole(v2(0x21, 0x11, addresses + tlvs));
        EXPECT_EQ(reader.status(), Status::invalid);
        EXPECT_EQ(reader.error(), "v2 TLV runs past the header");
    }
    // Two that tile the rest exactly are fine.
    const auto reader = read_whole(v2(0x21, 0x11, addresses + std::string("\x04\x00\x01\x00\x05\x00\x00", 7)));
    EXPECT_EQ(reader.status(), Status::header) << reader.error();
}

TEST(ProxyHeader, Version2Tcp6) {
    std::string block(36, '\0');
    inet_pton(AF_INET6, "2001:db8::7", block.data());
    inet_pton(AF_INET6, "2001:db8::1", block.data() + 16);
    block[32] = static_cast<char>(0x9c);
    block[33] = 0x40;  // 40000
    const auto reader = read_whole(v2(0x21, 0x21, block));
    ASSERT_EQ(reader.status(), Status::header) << reader.error();
    EXPECT_EQ(format_address(reader.source()), "('2001:db8::7', 40000, 0, 0)");
}

TEST(ProxyHeader, Version2LocalAndUnspecKeepTheConnectionsAddress) {
    auto reader = read_whole(v2(0x20, 0x00, ""));
    ASSERT_EQ(reader.status(), Status::header);
    EXPECT_FALSE(reader.relayed());
    reader = read_whole(v2(0x20, 0x11, ipv4_block("10.0.0.1", 1, "10.0.0.2", 2)));
    ASSERT_EQ(reader.status(), Status::header);
    EXPECT_FALSE(reader.relayed());
    reader = read_whole(v2(0x21, 0x00, ""));
    ASSERT_EQ(reader.status(), Status::header);
    EXPECT_FALSE(reader.relayed());
}

TEST(ProxyHeader, Version2IsStrict) {
    const std::string ipv4 = ipv4_block("127.0.0.7", 1, "127.0.0.1", 2);
    EXPECT_EQ(read_whole(v2(0x11, 0x11, ipv4)).status(), Status::invalid);               // version 1
    EXPECT_EQ(read_whole(v2(0x22, 0x11, ipv4)).status(), Status::invalid);               // command 2
    EXPECT_EQ(read_whole(v2(0x21, 0x11, ipv4.substr(0, 8))).status(), Status::invalid);  // too short
    EXPECT_EQ(read_whole(v2(0x21, 0x21, ipv4)).status(), Status::invalid);               // short for IPv6
    // A length beyond the bound is refused at once, before the bytes are awaited.
    std::string huge("\r\n\r\n\0\r\nQUIT\n\x21\x11\xff\xff", 16);
    EXPECT_EQ(read_whole(huge).status(), Status::invalid);
}

// The families zen does not route by: the specification's receiver "falls back to the UNSPEC
// mode for the valid combinations ... that it does not support": the header is consumed, its
// address block skipped by its length, and the connection keeps the proxy's own address. Each
// declared family and protocol must still come with at least its addresses' length (spec §2.2):
// 12 bytes for IPv4, 36 for IPv6, 216 for UNIX; with an UNSPEC family or protocol the addresses
// are ignored, whatever their length.
TEST(ProxyHeader, Version2FamiliesNotRoutedByKeepTheProxysAddress) {
    const std::string tlv("\x04\x00\x02zz", 5);  // a NOOP TLV after the addresses
    struct Case {
        const char* what;
        unsigned char family;
        std::string block;
    };
    const std::vector<Case> cases = {
        {"UNIX stream", 0x31, std::string(216, 'u')},
        {"UNIX stream with a TLV", 0x31, std::string(216, 'u') + tlv},
        {"UNIX datagram", 0x32, std::string(216, '\0')},
        {"UDP over IPv4", 0x12, ipv4_block("10.0.0.1", 53, "10.0.0.2", 53)},
        {"UDP over IPv6", 0x22, std::string(36, '\1') + tlv},
        {"UNSPEC with no addresses", 0x00, ""},
        {"UNSPEC with some bytes", 0x00, std::string(7, 'x')},
        {"UNSPEC over a stream", 0x01, ""},
        {"UNSPEC over datagrams", 0x02, std::string(3, 'x')},
        {"IPv4 with an UNSPEC protocol", 0x10, ""},
        {"IPv6 with an UNSPEC protocol", 0x20, std::string(5, 'x')},
        {"UNIX with an UNSPEC protocol", 0x30, ""},
    };
    for (const Case& c : cases) {
        const std::string header = v2(0x21, c.family, c.block);
        const std::string bytes = header + "Beautiful is better than?";
        for (std::size_t split = 0; split <= header.size(); ++split) {
            ProxyHeaderReader reader;
            const Status first = reader.feed(std::string_view(bytes).substr(0, split));
            // Whole at the split: decided then, and what follows is the session's, not the reader's.
            const bool whole = split == header.size();
            EXPECT_EQ(first, whole ? Status::header : Status::need_more) << c.what << " split at " << split;
            if (!whole) {
                ASSERT_EQ(reader.feed(std::string_view(bytes).substr(split)), Status::header) << c.what << " at " << split;
            }
            EXPECT_FALSE(reader.relayed()) << c.what;
            EXPECT_EQ(reader.remainder(), whole ? "" : "Beautiful is better than?") << c.what << " split at " << split;
        }
        EXPECT_EQ(read_bytewise(header).status(), Status::header) << c.what;
    }
}

TEST(ProxyHeader, Version2FamiliesNeedTheirAddressesLength) {
    EXPECT_EQ(read_whole(v2(0x21, 0x31, std::string(215, 'u'))).status(), Status::invalid);
    EXPECT_EQ(read_whole(v2(0x21, 0x32, std::string(108, 'u'))).status(), Status::invalid);
    EXPECT_EQ(read_whole(v2(0x21, 0x31, "")).status(), Status::invalid);
    EXPECT_EQ(read_whole(v2(0x21, 0x12, std::string(11, 'x'))).status(), Status::invalid);
    EXPECT_EQ(read_whole(v2(0x21, 0x22, std::string(35, 'x'))).status(), Status::invalid);
    EXPECT_EQ(read_whole(v2(0x21, 0x31, std::string(216, 'u') + "\x04\x00\x09z")).status(), Status::invalid);  // TLV past the end
    EXPECT_NE(read_whole(v2(0x21, 0x31, std::string(215, 'u'))).error().find("UNIX"), std::string::npos);
    // LOCAL ignores the family and its length, as the specification says.
    EXPECT_EQ(read_whole(v2(0x20, 0x31, "")).status(), Status::header);
}

// A family above 3 or a protocol above 2 is unassigned: "must be rejected as invalid by receivers".
TEST(ProxyHeader, Version2UnassignedFamiliesAndProtocolsAreRefused) {
    for (const unsigned char family : {0x03, 0x13, 0x23, 0x33, 0x41, 0x40, 0x4f, 0xf1, 0xff}) {
        const ProxyHeaderReader reader = read_whole(v2(0x21, family, std::string(216, 'x')));
        EXPECT_EQ(reader.status(), Status::invalid) << std::hex << static_cast<int>(family);
        EXPECT_NE(reader.error().find("unassigned"), std::string::npos) << reader.error();
    }
}

TEST(ProxyHeader, IncompleteHeadersWait) {
    EXPECT_EQ(read_whole("PROXY TCP4 127.0.0.7").status(), Status::need_more);
    EXPECT_EQ(read_whole("PRO").status(), Status::need_more);
    EXPECT_EQ(read_whole(std::string("\r\n\r\n\0", 5)).status(), Status::need_more);
    const std::string header = v2(0x21, 0x11, ipv4_block("127.0.0.7", 1, "127.0.0.1", 2));
    EXPECT_EQ(read_whole(header.substr(0, header.size() - 1)).status(), Status::need_more);
}

TEST(ProxyHeader, OtherBytesAreNotAHeader) {
    for (const char* bytes : {"Beautiful is better than?", "Practicality beats purity?", "\r\nBeautiful", "GET / HTTP/1.1\r\n"}) {
        const auto reader = read_whole(bytes);
        EXPECT_EQ(reader.status(), Status::not_a_header) << bytes;
        EXPECT_EQ(reader.remainder(), bytes);
    }
    // Decided as soon as a byte rules a header out.
    EXPECT_EQ(read_whole("PR0").status(), Status::not_a_header);
}

SocketAddress loopback(const char* address, std::uint16_t port) {
    return resolve(address, port, false).value().front();
}

ProxyPolicy policy_trusting(const char* block) {
    ProxyPolicy policy;
    policy.enabled = true;
    policy.trusted.push_back(Cidr::parse(block).value());
    return policy;
}

TEST(ProxyGate, ATrustedProxysHeaderNamesTheClient) {
    ProxyGate gate(policy_trusting("127.0.0.1/32"), loopback("127.0.0.1", 50000));
    EXPECT_TRUE(gate.active());
    EXPECT_TRUE(gate.trusted());
    EXPECT_EQ(gate.feed("PROXY TCP4 127.0.0.7 127.0.0.1 5555 1060\r"), ProxyGate::Verdict::wait);
    EXPECT_EQ(gate.feed("\nUgly"), ProxyGate::Verdict::admit);
    EXPECT_EQ(format_address(gate.client()), "('127.0.0.7', 5555)");
    EXPECT_EQ(gate.remainder(), "Ugly");
}

TEST(ProxyGate, ATrustedProxyMustSendAHeader) {
    ProxyGate gate(policy_trusting("127.0.0.0/8"), loopback("127.0.0.1", 50000));
    EXPECT_EQ(gate.feed("Beautiful is better than?"), ProxyGate::Verdict::refuse);
    EXPECT_NE(gate.reason().find("no PROXY header"), std::string::npos);
}

TEST(ProxyGate, ADirectClientIsServedButMayNotForgeAHeader) {
    const ProxyPolicy policy = policy_trusting("127.0.0.1/32");
    ProxyGate direct(policy, loopback("127.0.0.3", 50000));
    EXPECT_FALSE(direct.trusted());
    EXPECT_EQ(direct.feed("Beautiful is better than?"), ProxyGate::Verdict::admit);
    EXPECT_EQ(format_address(direct.client()), "('127.0.0.3', 50000)");
    EXPECT_EQ(direct.remainder(), "Beautiful is better than?");

    ProxyGate forger(policy, loopback("127.0.0.3", 50001));
    EXPECT_EQ(forger.feed("PROXY TCP4 10.9.9.9 127.0.0.1 1 1060\r\n"), ProxyGate::Verdict::refuse);
    EXPECT_NE(forger.reason().find("not a --trusted-proxy"), std::string::npos);
    EXPECT_EQ(format_address(forger.client()), "('127.0.0.3', 50001)");
}

TEST(ProxyGate, ADirectClientsQuestionThatStartsWithProxyIsAQuestionAtOnce) {
    const ProxyPolicy policy = policy_trusting("127.0.0.1/32");
    ProxyGate direct(policy, loopback("127.0.0.3", 50000));
    EXPECT_EQ(direct.feed("PROXY is"), ProxyGate::Verdict::admit);  // no header starts so: decided now
    EXPECT_EQ(direct.remainder(), "PROXY is");
    ProxyGate asking(policy, loopback("127.0.0.3", 50001));
    EXPECT_EQ(asking.feed("PROXY TCP4?"), ProxyGate::Verdict::admit);
    EXPECT_EQ(asking.remainder(), "PROXY TCP4?");
    ProxyGate proxy(policy, loopback("127.0.0.1", 50002));  // from the trusted proxy, it is a bad header
    EXPECT_EQ(proxy.feed("PROXY is better than?"), ProxyGate::Verdict::refuse);
    EXPECT_EQ(proxy.reason(), "invalid PROXY header: v1 protocol must be TCP4, TCP6 or UNKNOWN");
}

TEST(ProxyGate, AMalformedHeaderIsRefused) {
    ProxyGate gate(policy_trusting("127.0.0.1/32"), loopback("127.0.0.1", 50000));
    EXPECT_EQ(gate.feed("PROXY TCP4 nonsense\r\n"), ProxyGate::Verdict::refuse);
    EXPECT_NE(gate.reason().find("invalid PROXY header"), std::string::npos);
}

TEST(ProxyGate, OffWhenTheOptionIsOff) {
    const ProxyGate gate(ProxyPolicy{}, loopback("127.0.0.1", 50000));
    EXPECT_FALSE(gate.active());
    EXPECT_FALSE(gate.trusted());
}

}  // namespace
}  // namespace zen
