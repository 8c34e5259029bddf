// Socket addresses: parsing HOST/PORT as the book's command lines take them, and formatting
// peers the way the book's logs show them (Python's address tuples).
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"

namespace zen {

// Room for the addresses zen serves, IPv4 and IPv6: 28 bytes, where sockaddr_storage takes 128.
// Every connection keeps one, and ten thousand idle connections should cost little.
// The larger member comes first: `{}` zeroes a union's first member, and compilers need not zero
// the bytes past it, so with sockaddr_in first an IPv6 address built field by field could carry
// a stray scope id (found by fuzz_proxy).
union IpSocketAddress {
    sockaddr_in6 in6;
    sockaddr_in in4;
};

struct SocketAddress {
    IpSocketAddress storage{};
    socklen_t length = 0;

    const sockaddr* get() const { return reinterpret_cast<const sockaddr*>(&storage); }
    sockaddr* get() { return reinterpret_cast<sockaddr*>(&storage); }
    int family() const { return storage.in4.sin_family; }  // the two share their first member
};

// Addresses for HOST and PORT, in the resolver's order. For a server (passive), "" means every
// interface: the IPv6 wildcard first (dual-stack), then the IPv4 one. IPv6 literals may be
// written bare (::1) or in brackets ([::1]); names go through getaddrinfo.
Result<std::vector<SocketAddress>> resolve(std::string_view host, std::uint16_t port, bool passive);

// Python's repr of the address tuple: ('127.0.0.1', 1060) or ('::1', 1060, 0, 0).
// IPv4-mapped IPv6 addresses (a dual-stack listener's IPv4 clients) print as IPv4.
std::string format_address(const SocketAddress& address);
std::string format_address(std::string_view host, std::uint16_t port);

std::uint16_t address_port(const SocketAddress& address);

}  // namespace zen
