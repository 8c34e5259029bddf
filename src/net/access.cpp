#include "net/access.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <tcpd.h>

#include <algorithm>
#include <cstring>
#include <mutex>

// libwrap reads these when it logs; zen does its own logging.
int allow_severity = 0;
int deny_severity = 0;

namespace zen {

namespace {

std::array<std::uint8_t, 16> mapped_bytes(const SocketAddress& peer, bool& ok) {
    std::array<std::uint8_t, 16> bytes{};
    ok = true;
    if (peer.family() == AF_INET) {
        bytes[10] = bytes[11] = 0xff;
        std::memcpy(&bytes[12], &reinterpret_cast<const sockaddr_in*>(&peer.storage)->sin_addr, 4);
    } else if (peer.family() == AF_INET6) {
        std::memcpy(bytes.data(), &reinterpret_cast<const sockaddr_in6*>(&peer.storage)->sin6_addr, 16);
    } else {
        ok = false;
    }
    return bytes;
}

std::string address_text(const SocketAddress& peer) {
    bool ok = false;
    const auto bytes = mapped_bytes(peer, ok);
    char text[INET6_ADDRSTRLEN] = {};
    const bool v4 = bytes[10] == 0xff && bytes[11] == 0xff &&
                    std::all_of(bytes.begin(), bytes.begin() + 10, [](std::uint8_t b) { return b == 0; });
    if (v4) {
        ::inet_ntop(AF_INET, &bytes[12], text, sizeof text);
    } else {
        ::inet_ntop(AF_INET6, bytes.data(), text, sizeof text);
    }
    return text;
}

// libwrap keeps its tables in globals and is not thread-safe.
std::mutex libwrap_mutex;

}  // namespace

Result<Cidr> Cidr::parse(std::string_view text) {
    const std::string whole(text);
    const auto slash = whole.find('/');
    const std::string host = whole.substr(0, slash);
    Cidr cidr;
    if (whole == "all" || whole == "ALL") return cidr;  // prefix 0: every address, IPv4 and IPv6
    int width = 0;
    if (in_addr v4{}; ::inet_pton(AF_INET, host.c_str(), &v4) == 1) {
        cidr.address[10] = cidr.address[11] = 0xff;
        std::memcpy(&cidr.address[12], &v4, 4);
        width = 32;
    } else if (in6_addr v6{}; ::inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
        std::memcpy(cidr.address.data(), &v6, 16);
        width = 128;
    } else {
        return Error{"'" + whole + "' is not an IP address or CIDR block (e.g. 127.0.0.2/32, ::1/128)"};
    }
    int prefix = width;
    if (slash != std::string::npos) {
        const std::string digits = whole.substr(slash + 1);
        if (digits.empty() || digits.size() > 3 || digits.find_first_not_of("0123456789") != std::string::npos ||
            std::stoi(digits) > width) {
            return Error{"'" + whole + "' has a bad prefix length (0 to " + std::to_string(width) + ")"};
        }
        prefix = std::stoi(digits);
    }
    cidr.prefix = prefix + (128 - width);
    return cidr;
}

bool Cidr::contains(const SocketAddress& peer) const {
    bool ok = false;
    const auto bytes = mapped_bytes(peer, ok);
    if (!ok) return false;
    int bits = prefix;
    for (std::size_t i = 0; i < 16 && bits > 0; ++i, bits -= 8) {
        const std::uint8_t mask = bits >= 8 ? 0xff : static_cast<std::uint8_t>(0xff << (8 - bits));
        if ((bytes[i] & mask) != (address[i] & mask)) return false;
    }
    return true;
}

std::string refusal(const AccessRules& rules, const SocketAddress& peer) {
    for (const Cidr& cidr : rules.allow) {
        if (cidr.contains(peer)) return {};
    }
    for (const Cidr& cidr : rules.deny) {
        if (cidr.contains(peer)) return "denied by --deny";
    }
    if (rules.hosts_allow.empty() && rules.hosts_deny.empty()) return {};
    std::string address = address_text(peer);
    std::string daemon = rules.daemon_name;
    std::string unknown = STRING_UNKNOWN;
    // Tables that are not given point at a file that does not exist, which libwrap reads as empty.
    std::string allow_table = rules.hosts_allow.empty() ? "/nonexistent/zen-hosts.allow" : rules.hosts_allow;
    std::string deny_table = rules.hosts_deny.empty() ? "/nonexistent/zen-hosts.deny" : rules.hosts_deny;
    const std::lock_guard lock(libwrap_mutex);
    hosts_allow_table = allow_table.data();
    hosts_deny_table = deny_table.data();
    const int admitted = ::hosts_ctl(daemon.data(), unknown.data(), address.data(), unknown.data());
    return admitted != 0 ? std::string() : "denied by hosts_access (" + rules.hosts_allow + ", " + rules.hosts_deny + ")";
}

}  // namespace zen
