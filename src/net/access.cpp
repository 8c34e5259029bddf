#include "net/access.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <tcpd.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <mutex>

#include "base/files.hpp"

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

namespace {

std::string_view trimmed(std::string_view text) {
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
    while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
    return text;
}

// A rule's fields: split at ':' outside [IPv6] brackets and not escaped with a backslash.
std::vector<std::string_view> rule_fields(std::string_view rule) {
    std::vector<std::string_view> fields;
    int depth = 0;
    std::size_t start = 0;
    for (std::size_t i = 0; i < rule.size(); ++i) {
        const char c = rule[i];
        if (c == '\\') {
            ++i;  // an escaped character, ':' included
        } else if (c == '[') {
            ++depth;
        } else if (c == ']') {
            depth = std::max(0, depth - 1);
        } else if (c == ':' && depth == 0) {
            fields.push_back(rule.substr(start, i - start));
            start = i + 1;
        }
    }
    fields.push_back(rule.substr(start));
    return fields;
}

}  // namespace

Result<Ok> check_hosts_table_text(const std::string& name, std::string_view text) {
    std::size_t line_number = 0;
    while (!text.empty()) {
        // One rule: a line, with the lines a trailing backslash continues.
        const std::size_t first_line = ++line_number;
        std::string rule;
        for (;;) {
            const std::size_t end = text.find('\n');
            std::string_view line = text.substr(0, end);
            text = end == std::string_view::npos ? std::string_view{} : text.substr(end + 1);
            if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
            if (line.empty() || line.back() != '\\' || text.empty()) {
                rule.append(line);
                break;
            }
            rule.append(line.substr(0, line.size() - 1)).append(" ");
            ++line_number;
        }
        const std::string_view body = trimmed(rule);
        if (body.empty() || body.front() == '#') continue;
        const std::vector<std::string_view> fields = rule_fields(body);
        for (std::size_t i = 2; i < fields.size(); ++i) {
            const std::string_view option = trimmed(fields[i]);
            std::string keyword(option.substr(0, option.find_first_of(" \t=")));
            for (char& c : keyword) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            if (keyword == "allow" || keyword == "deny") continue;
            return Error{name + ": line " + std::to_string(first_line) + ": option '" + shortened(keyword, 30) +
                         "': zen honours only ALLOW and DENY; libwrap would run anything else inside the server"};
        }
    }
    return Ok{};
}

Result<Ok> check_hosts_tables(const AccessRules& rules) {
    for (const std::string* path : {&rules.hosts_allow, &rules.hosts_deny}) {
        if (path->empty()) continue;
        auto text = read_bounded_file(*path, max_hosts_table);
        if (!text) return Error{"hosts table: " + text.error()};
        if (auto checked = check_hosts_table_text(*path, *text); !checked) return checked;
    }
    return Ok{};
}

}  // namespace zen
