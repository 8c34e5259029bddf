#include "net/proxy_protocol.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

namespace zen {

namespace {

constexpr std::string_view v2_signature{"\r\n\r\n\0\r\nQUIT\n", 12};
constexpr std::string_view v1_prefix = "PROXY ";

// Whether data could be the beginning of `whole` (or holds all of it).
bool starts_like(std::string_view data, std::string_view whole) {
    const std::size_t n = std::min(data.size(), whole.size());
    return data.substr(0, n) == whole.substr(0, n);
}

std::vector<std::string_view> split_spaces(std::string_view line) {
    std::vector<std::string_view> words;
    std::size_t start = 0;
    for (;;) {
        const std::size_t space = line.find(' ', start);
        words.push_back(line.substr(start, space == std::string_view::npos ? std::string_view::npos : space - start));
        if (space == std::string_view::npos) return words;
        start = space + 1;
    }
}

bool parse_port(std::string_view text, std::uint16_t& port) {
    if (text.empty() || text.size() > 5 || (text.size() > 1 && text[0] == '0')) return false;
    unsigned value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') return false;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > 65535) return false;
    port = static_cast<std::uint16_t>(value);
    return true;
}

SocketAddress ipv4_address(const void* address_bytes, std::uint16_t port) {
    SocketAddress address;
    auto* in = reinterpret_cast<sockaddr_in*>(&address.storage);
    in->sin_family = AF_INET;
    std::memcpy(&in->sin_addr, address_bytes, 4);
    in->sin_port = htons(port);
    address.length = sizeof(sockaddr_in);
    return address;
}

SocketAddress ipv6_address(const void* address_bytes, std::uint16_t port) {
    SocketAddress address;
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&address.storage);
    in6->sin6_family = AF_INET6;
    std::memcpy(&in6->sin6_addr, address_bytes, 16);
    in6->sin6_port = htons(port);
    address.length = sizeof(sockaddr_in6);
    return address;
}

std::uint16_t big_endian_16(const char* bytes) {
    return static_cast<std::uint16_t>((static_cast<unsigned char>(bytes[0]) << 8) | static_cast<unsigned char>(bytes[1]));
}

// The type-length-value records after the addresses must tile what is left exactly: one that
// claims more bytes than the header holds is refused, as haproxy refuses it.
bool tlvs_fit(std::string_view rest) {
    while (!rest.empty()) {
        if (rest.size() < 3) return false;
        const std::size_t value_length = big_endian_16(rest.data() + 1);
        if (3 + value_length > rest.size()) return false;
        rest.remove_prefix(3 + value_length);
    }
    return true;
}

}  // namespace

ProxyHeaderReader::Status ProxyHeaderReader::feed(std::string_view bytes) {
    if (status_ != Status::need_more) return status_;
    buffer_.append(bytes);
    status_ = decide();
    return status_;
}

std::string_view ProxyHeaderReader::remainder() const {
    return std::string_view(buffer_).substr(std::min(header_length_, buffer_.size()));
}

std::string ProxyHeaderReader::take_remainder() {
    std::string rest(remainder());
    std::string().swap(buffer_);
    header_length_ = 0;
    return rest;
}

ProxyHeaderReader::Status ProxyHeaderReader::fail(std::string reason) {
    error_ = std::move(reason);
    header_length_ = 0;  // remainder(): every byte, for a direct client whose bytes were no header
    return Status::invalid;
}

ProxyHeaderReader::Status ProxyHeaderReader::decide() {
    if (buffer_.empty()) return Status::need_more;
    if (starts_like(buffer_, v2_signature)) return buffer_.size() < v2_signature.size() ? Status::need_more : parse_v2();
    if (starts_like(buffer_, v1_prefix)) return buffer_.size() < v1_prefix.size() ? Status::need_more : parse_v1();
    header_length_ = 0;
    return Status::not_a_header;
}

ProxyHeaderReader::Status ProxyHeaderReader::parse_v1() {
    const std::size_t scanned = std::min(buffer_.size(), max_proxy_v1_line);
    const std::string_view head = std::string_view(buffer_).substr(0, scanned);
    // Decided as early as the bytes allow, not at the line's end: its protocol word is known
    // within eight bytes, and no header holds a '?' (a direct client asking "PROXY ...?" must not
    // wait out a timeout before it is answered).
    const std::string_view word = head.substr(v1_prefix.size());
    if (!starts_like(word, "TCP4 ") && !starts_like(word, "TCP6 ") && !starts_like(word, "UNKNOWN"))
        return fail("v1 protocol must be TCP4, TCP6 or UNKNOWN");
    if (head.substr(0, head.find('\n')).find('?') != std::string_view::npos) return fail("v1 line has a '?'");
    const std::size_t newline = head.find('\n');
    if (newline == std::string_view::npos) {
        if (buffer_.size() >= max_proxy_v1_line) return fail("v1 line longer than 107 bytes");
        const std::size_t carriage = head.find('\r');
        if (carriage != std::string_view::npos && carriage + 1 < head.size()) return fail("v1 line has a CR without LF");
        return Status::need_more;
    }
    if (newline == 0 || head[newline - 1] != '\r') return fail("v1 line does not end with CRLF");
    const std::string_view line = head.substr(v1_prefix.size(), newline - 1 - v1_prefix.size());
    if (line.find('\r') != std::string_view::npos) return fail("v1 line has a CR inside");
    // US-ASCII, as the specification says: a NUL would end an address early (inet_pton reads a
    // C string), so "127.0.0.7\0junk" must not pass for 127.0.0.7.
    if (std::any_of(line.begin(), line.end(), [](char c) { return c < 0x20 || c > 0x7e; }))
        return fail("v1 line has a byte that is not printable ASCII");
    header_length_ = newline + 1;
    const std::vector<std::string_view> words = split_spaces(line);
    if (words[0] == "UNKNOWN") {
        relayed_ = false;
        return Status::header;
    }
    const bool ipv4 = words[0] == "TCP4";
    if (!ipv4 && words[0] != "TCP6") return fail("v1 protocol must be TCP4, TCP6 or UNKNOWN");
    if (words.size() != 5) return fail("v1 line needs protocol, two addresses and two ports, single-spaced");
    unsigned char source[16];
    unsigned char destination[16];
    const int family = ipv4 ? AF_INET : AF_INET6;
    const std::string source_text(words[1]);
    const std::string destination_text(words[2]);
    if (inet_pton(family, source_text.c_str(), source) != 1 ||
        inet_pton(family, destination_text.c_str(), destination) != 1)
        return fail(std::string("v1 address is not ") + (ipv4 ? "IPv4" : "IPv6"));
    std::uint16_t source_port = 0;
    std::uint16_t destination_port = 0;
    if (!parse_port(words[3], source_port) || !parse_port(words[4], destination_port))
        return fail("v1 port is not a number from 0 to 65535");
    relayed_ = true;
    source_ = ipv4 ? ipv4_address(source, source_port) : ipv6_address(source, source_port);
    return Status::header;
}

ProxyHeaderReader::Status ProxyHeaderReader::parse_v2() {
    if (buffer_.size() < 16) return Status::need_more;
    const auto version_command = static_cast<unsigned char>(buffer_[12]);
    if ((version_command >> 4) != 2) return fail("v2 version is not 2");
    const unsigned command = version_command & 0x0f;
    if (command > 1) return fail("v2 command is neither LOCAL nor PROXY");
    const auto family = static_cast<unsigned char>(buffer_[13]);
    const std::size_t length = big_endian_16(&buffer_[14]);
    if (16 + length > max_proxy_header) return fail("v2 header longer than " + std::to_string(max_proxy_header) + " bytes");
    if (buffer_.size() < 16 + length) return Status::need_more;
    header_length_ = 16 + length;
    const char* block = buffer_.data() + 16;
    if (command == 0) {  // LOCAL: the proxy's own connection, a health check
        relayed_ = false;
        return Status::header;
    }
    // The family byte: the address family in the high nibble, the transport in the low one.
    const unsigned address_family = family >> 4;
    const unsigned transport = family & 0x0f;
    if (address_family > 3 || transport > 2) {
        return fail("v2 family byte " + std::to_string(family) + " is unassigned (the specification says to refuse it)");
    }
    // With an UNSPEC family or transport the addresses are to be ignored: skipped by the length.
    if (address_family == 0 || transport == 0) {
        relayed_ = false;
        return Status::header;
    }
    static constexpr std::size_t address_lengths[] = {0, 12, 36, 216};  // IPv4, IPv6, UNIX (2 x 108)
    static constexpr const char* family_names[] = {"", "IPv4", "IPv6", "UNIX"};
    const std::size_t addresses = address_lengths[address_family];
    if (length < addresses) {
        return fail(std::string("v2 length too short for ") + family_names[address_family] + " addresses");
    }
    if (!tlvs_fit(std::string_view(block + addresses, length - addresses))) return fail("v2 TLV runs past the header");
    if (transport != 1 || address_family == 3) {
        // UDP, UNIX stream or datagram: valid, and not what zen routes by. As the specification's
        // receiver falls back to UNSPEC for a combination it does not support, the connection
        // keeps the proxy's own address.
        relayed_ = false;
        return Status::header;
    }
    relayed_ = true;
    source_ = address_family == 1 ? ipv4_address(block, big_endian_16(block + 8))
                                  : ipv6_address(block, big_endian_16(block + 32));
    return Status::header;
}

ProxyGate::ProxyGate(const ProxyPolicy& policy, const SocketAddress& peer) : active_(policy.enabled), client_(peer) {
    trusted_ = active_ && std::any_of(policy.trusted.begin(), policy.trusted.end(),
                                      [&peer](const Cidr& cidr) { return cidr.contains(peer); });
}

ProxyGate::Verdict ProxyGate::feed(std::string_view bytes) {
    switch (reader_.feed(bytes)) {
        case ProxyHeaderReader::Status::need_more:
            return Verdict::wait;
        case ProxyHeaderReader::Status::header:
            if (!trusted_) {
                forged_ = true;
                reason_ = "PROXY header from an address that is not a --trusted-proxy";
                return Verdict::refuse;
            }
            if (reader_.relayed()) client_ = reader_.source();
            return Verdict::admit;
        case ProxyHeaderReader::Status::not_a_header:
            if (trusted_) {
                reason_ = "a trusted proxy sent no PROXY header";
                return Verdict::refuse;
            }
            return Verdict::admit;
        case ProxyHeaderReader::Status::invalid:
            // From a direct client, bytes that are no header are its first question.
            if (!trusted_) return Verdict::admit;
            reason_ = "invalid PROXY header: " + reader_.error();
            return Verdict::refuse;
    }
    return Verdict::refuse;
}

}  // namespace zen
