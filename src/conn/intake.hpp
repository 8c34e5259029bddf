// The start of every conversation: the access verdict before a byte is read, --max-connections,
// and under --proxy-protocol the header phase that finds the real client. Without
// --proxy-protocol it is the verdict and the "Accepted" line, nothing more. Sans-I/O: part of
// Connection (connection.hpp), which passes the context to every call.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "base/clock.hpp"
#include "conn/rules.hpp"
#include "net/address.hpp"
#include "net/proxy_protocol.hpp"

namespace zen {

class ClientIntake {
public:
    enum class Admission { admitted, refused, busy };
    enum class Step { wait, converse, close };

    ClientIntake(const ConnectionContext& context, const SocketAddress& peer, TimePoint now);

    // Right after accept, before this connection counts as open. refused: by the access rules
    // (close it unread); busy: --max-connections is reached (send it server_busy_answer). Both
    // are logged and counted.
    Admission admit(const ConnectionContext& context, const SocketAddress& peer);

    // True while a PROXY header (or a direct client's first bytes) must be read first.
    bool reading_header() const { return reading_header_; }
    TimePoint header_deadline() const { return header_deadline_; }
    // Bytes read while reading_header(). converse: hand take_remainder() to the session; it
    // moves out what followed the header, so nothing of the first read stays for the
    // connection's lifetime. close: refused and logged.
    Step feed(const ConnectionContext& context, std::string_view bytes);
    std::string take_remainder();
    // The header did not come by header_deadline(): logs it.
    void header_timed_out(const ConnectionContext& context);
    // The client as the logs name it: the real one once a header said so.
    const std::string& peer() const { return peer_; }

private:
    bool trusted() const { return gate_ != nullptr && gate_->trusted(); }

    // Only under --proxy-protocol, and only until the header phase is over: a gate is some
    // hundreds of bytes, and every connection has an intake.
    std::unique_ptr<ProxyGate> gate_;
    std::string peer_;
    bool reading_header_;
    TimePoint header_deadline_;
};

}  // namespace zen
