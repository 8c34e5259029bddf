#include "net/address.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>

namespace zen {

namespace {

SocketAddress ipv6_wildcard(std::uint16_t port) {
    SocketAddress address;
    auto* sin6 = reinterpret_cast<sockaddr_in6*>(&address.storage);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_addr = in6addr_any;
    sin6->sin6_port = htons(port);
    address.length = sizeof(sockaddr_in6);
    return address;
}

SocketAddress ipv4_wildcard(std::uint16_t port) {
    SocketAddress address;
    auto* sin = reinterpret_cast<sockaddr_in*>(&address.storage);
    sin->sin_family = AF_INET;
    sin->sin_addr.s_addr = htonl(INADDR_ANY);
    sin->sin_port = htons(port);
    address.length = sizeof(sockaddr_in);
    return address;
}

}  // namespace

Result<std::vector<SocketAddress>> resolve(std::string_view host, std::uint16_t port, bool passive) {
    if (host.empty()) {
        if (!passive) return Error{"an empty host names no server to connect to"};
        return std::vector<SocketAddress>{ipv6_wildcard(port), ipv4_wildcard(port)};
    }
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2);
    }
    const std::string name(host);
    if (name.find('\0') != std::string::npos) return Error{"invalid host name"};

    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : AI_ADDRCONFIG);
    addrinfo* found = nullptr;
    const std::string service = std::to_string(port);
    const int rc = ::getaddrinfo(name.c_str(), service.c_str(), &hints, &found);
    if (rc != 0) {
        return Error{"cannot resolve host '" + name + "': " + ::gai_strerror(rc)};
    }
    std::vector<SocketAddress> addresses;
    for (const addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
        SocketAddress address;
        if (ai->ai_addrlen > sizeof(address.storage)) continue;
        std::memcpy(&address.storage, ai->ai_addr, ai->ai_addrlen);
        address.length = ai->ai_addrlen;
        addresses.push_back(address);
    }
    ::freeaddrinfo(found);
    if (addresses.empty()) return Error{"host '" + name + "' has no usable address"};
    return addresses;
}

std::string format_address(std::string_view host, std::uint16_t port) {
    // Built in place: this runs once per accepted client, so one allocation, not five.
    char digits[8];
    const auto [end, ignored] = std::to_chars(digits, digits + sizeof digits, port);
    std::string text;
    text.reserve(host.size() + static_cast<std::size_t>(end - digits) + 6);
    text.append("('").append(host).append("', ").append(digits, end).push_back(')');
    return text;
}

std::uint16_t address_port(const SocketAddress& address) {
    if (address.family() == AF_INET) {
        return ntohs(reinterpret_cast<const sockaddr_in*>(&address.storage)->sin_port);
    }
    if (address.family() == AF_INET6) {
        return ntohs(reinterpret_cast<const sockaddr_in6*>(&address.storage)->sin6_port);
    }
    return 0;
}

namespace {

// "a.b.c.d" from four bytes in network order; inet_ntop() goes through sprintf, a tenth of a
// short conversation's user-space work.
std::string_view ipv4_text(const unsigned char* bytes, char (&text)[INET_ADDRSTRLEN]) {
    char* out = text;
    for (int i = 0; i < 4; ++i) {
        if (i > 0) *out++ = '.';
        out = std::to_chars(out, text + sizeof text, bytes[i]).ptr;
    }
    return {text, static_cast<std::size_t>(out - text)};
}

}  // namespace

std::string format_address(const SocketAddress& address) {
    if (address.family() == AF_INET) {
        const auto* sin = reinterpret_cast<const sockaddr_in*>(&address.storage);
        char text[INET_ADDRSTRLEN];
        return format_address(ipv4_text(reinterpret_cast<const unsigned char*>(&sin->sin_addr), text),
                              ntohs(sin->sin_port));
    }
    if (address.family() == AF_INET6) {
        const auto* sin6 = reinterpret_cast<const sockaddr_in6*>(&address.storage);
        if (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr)) {
            char text[INET_ADDRSTRLEN];
            return format_address(ipv4_text(&sin6->sin6_addr.s6_addr[12], text), ntohs(sin6->sin6_port));
        }
        char text[INET6_ADDRSTRLEN] = {};
        ::inet_ntop(AF_INET6, &sin6->sin6_addr, text, sizeof text);
        return "('" + std::string(text) + "', " + std::to_string(ntohs(sin6->sin6_port)) + ", " +
               std::to_string(ntohl(sin6->sin6_flowinfo)) + ", " + std::to_string(sin6->sin6_scope_id) + ")";
    }
    return "(unknown address family " + std::to_string(address.family()) + ")";
}

}  // namespace zen
