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
#include <cstddef>
#include <string>
#include <string_view>
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

// The largest hosts table zen reads.
inline constexpr std::size_t max_hosts_table = 1024 * 1024;

// At start-up: each hosts table given must be a regular file of at most max_hosts_table bytes,
// and its rules may carry no option but ALLOW and DENY. libwrap runs the others inside the
// process that asks (hosts_options(5)): `spawn` and `twist` run commands, `twist` then exits,
// `banners` writes to the client, `user` and `umask` change the process, `rfc931` makes a
// blocking ident lookup. zen refuses such a table rather than let one client's match do that.
Result<Ok> check_hosts_tables(const AccessRules& rules);
// The check of one table's text (`name` for the message).
Result<Ok> check_hosts_table_text(const std::string& name, std::string_view text);

}  // namespace zen
