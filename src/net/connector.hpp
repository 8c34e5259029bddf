// Connecting as a client: every address HOST resolves to is tried in turn, each within a time
// limit; the socket comes back blocking, with the same limit on every send and receive.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "base/result.hpp"
#include "net/address.hpp"
#include "net/fd.hpp"

namespace zen {

struct Connection {
    Fd fd;
    SocketAddress peer;
};

// The error names every address tried and why each failed:
// "cannot connect to ('127.0.0.1', 1060): [Errno 111] Connection refused".
Result<Connection> connect_to(std::string_view host, std::uint16_t port, std::chrono::milliseconds timeout);

}  // namespace zen
