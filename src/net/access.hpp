// Who may talk to the server, checked right after accept() and before a byte is read, in every
// architecture and launch mode:
//   --allow CIDR / --deny CIDR  in process, first: a client matching an --allow is admitted, else
//                               one matching a --deny is refused (tcpd's order); `all` matches
//                               everyone; IPv4-mapped IPv6 clients match IPv4 rules.
//   --hosts-allow / --hosts-deny FILE  then hosts_access(5) through libwrap, as tcpd does, under
//                               the daemon name --daemon-name (zen).
// A client no rule refuses is admitted.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "net/address.hpp"

namespace zen {

struct Cidr {
    std::array<std::uint8_t, 16> address{};  // IPv4 kept in the IPv4-mapped IPv6 form
    int prefix = 0;                           // over the 128 bits

    static Result<Cidr> parse(std::string_view text);
    bool contains(const SocketAddress& peer) const;
};

struct AccessRules {
    std::vector<Cidr> allow;
    std::vector<Cidr> deny;
    std::string hosts_allow;  // libwrap tables; empty: not used
    std::string hosts_deny;
    std::string daemon_name = "zen";

    bool empty() const { return allow.empty() && deny.empty() && hosts_allow.empty() && hosts_deny.empty(); }
};

// Empty when the client is admitted, else why it is refused (for the log).
std::string refusal(const AccessRules& rules, const SocketAddress& peer);

}  // namespace zen
