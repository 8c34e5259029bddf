// The PROXY protocol, versions 1 and 2 (haproxy's proxy-protocol.txt): the one header a proxy
// such as haproxy (`send-proxy`, `send-proxy-v2`) sends before the client's bytes, naming the
// real client. A sans-I/O reader, fed bytes as they come; strict: v1 is one line of at most 107
// bytes ending in CRLF, with single spaces, addresses of the named family and ports without
// leading zeros; v2 has the 12-byte signature, version 2, command LOCAL or PROXY, an assigned
// family byte (family 0-3, transport 0-2), and a length that holds that family's addresses (12,
// 36 or 216 bytes; any for UNSPEC; TLVs after them must fit and are skipped). Only TCP over IPv4
// or IPv6 names the client; any other valid family (UDP, UNIX, UNSPEC) is accepted and the
// connection keeps the proxy's own address, as for LOCAL. Nothing is buffered past
// max_proxy_header bytes.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "net/access.hpp"
#include "net/address.hpp"

namespace zen {

inline constexpr std::size_t max_proxy_v1_line = 107;  // the specification's bound, CRLF included
inline constexpr std::size_t max_proxy_header = 16 + 2048;

class ProxyHeaderReader {
public:
    enum class Status {
        need_more,     // what arrived so far is the start of a header
        header,        // a whole, valid header: see relayed(), source(), remainder()
        not_a_header,  // the bytes cannot start a header: remainder() is all of them
        invalid,       // a header, but malformed: see error()
    };

    Status feed(std::string_view bytes);
    Status status() const { return status_; }

    // True for PROXY/TCP4/TCP6 headers; false for v2 LOCAL, v2 families other than TCP (UNSPEC,
    // UDP, UNIX) and v1 UNKNOWN, where the connection's own addresses stand.
    bool relayed() const { return relayed_; }
    const SocketAddress& source() const { return source_; }
    // The bytes that followed the header (or every byte, when there was no header).
    std::string_view remainder() const;
    // Moves remainder() out and frees the buffer, which held up to one whole read.
    std::string take_remainder();
    const std::string& error() const { return error_; }

private:
    Status decide();
    Status parse_v1();
    Status parse_v2();
    Status fail(std::string reason);

    std::string buffer_;
    std::size_t header_length_ = 0;
    Status status_ = Status::need_more;
    bool relayed_ = false;
    SocketAddress source_;
    std::string error_;
};

// --proxy-protocol: who may send a header, and how long a connection has to finish it.
struct ProxyPolicy {
    bool enabled = false;
    std::vector<Cidr> trusted;
    std::chrono::milliseconds header_timeout{5'000};
};

// What the server does with one connection's first bytes under --proxy-protocol. A trusted
// proxy must send a valid header, whose source then is the client; any other peer is a direct
// client and must not send one (a forged header is refused). Decided before the session sees a byte.
class ProxyGate {
public:
    enum class Verdict { wait, admit, refuse };

    ProxyGate(const ProxyPolicy& policy, const SocketAddress& peer);

    // False when there is nothing to wait for (--proxy-protocol off).
    bool active() const { return active_; }
    bool trusted() const { return trusted_; }
    Verdict feed(std::string_view bytes);

    // The client the server talks to: the header's source, or the peer itself.
    const SocketAddress& client() const { return client_; }
    // Bytes for the session once admitted.
    std::string_view remainder() const { return reader_.remainder(); }
    std::string take_remainder() { return reader_.take_remainder(); }
    // Why a connection was refused, for the log.
    const std::string& reason() const { return reason_; }
    // Refused for who sent the header (an untrusted address), not for what it held.
    bool forged() const { return forged_; }

private:
    bool active_ = false;
    bool trusted_ = false;
    SocketAddress client_;
    ProxyHeaderReader reader_;
    std::string reason_;
    bool forged_ = false;
};

}  // namespace zen
