// The listening socket: bound here from HOST/PORT (later issues add adopting one from inetd or
// systemd), and accepting that reports every outcome as a value.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.hpp"
#include "net/address.hpp"
#include "net/fd.hpp"

namespace zen {

struct Listener {
    Fd fd;  // non-blocking, close-on-exec, TCP_NODELAY
    std::string display;  // for "Listening at ...": the host as given, the port actually bound
    std::uint16_t port = 0;
    SocketAddress bound;
    // Linux copies TCP_NODELAY from the listener to each connection as the handshake completes,
    // so zen sets it once, on the listener. False for a listener passed without it (systemd
    // without NoDelay=true, inetd): the clients already queued when zen set it lack it, so each
    // accepted client gets it set apart, as accept_client(const Listener&) does.
    bool clients_inherit_no_delay = true;
};

// Binds and listens (SO_REUSEADDR; an IPv6 wildcard also takes IPv4 clients). Tries each
// address HOST resolves to and keeps the first that binds. With reuse_port, SO_REUSEPORT too,
// so that siblings can bind the same address (see open_sibling_listener).
Result<Listener> open_listener(std::string_view host, std::uint16_t port, int backlog, bool reuse_port = false);

// Another SO_REUSEPORT listener on the address `first` (opened with reuse_port) is bound to;
// the kernel spreads new connections across all of them.
Result<Listener> open_sibling_listener(const Listener& first, int backlog);

// A listening socket someone else bound (inetd's wait mode, systemd's Accept=no): it must be a
// listening stream socket. It is made non-blocking and close-on-exec.
Result<Listener> adopt_listener(int fd);

struct AcceptedClient {
    Fd fd;  // close-on-exec, TCP_NODELAY; non-blocking unless accepted for a blocking architecture
    SocketAddress peer;
};

enum class AcceptStatus {
    accepted,
    would_block,   // nothing to accept (another acceptor took it, or a spurious wake-up)
    client_gone,   // the client gave up before we accepted it (ECONNABORTED, EPROTO...)
    out_of_fds,    // EMFILE/ENFILE/ENOBUFS/ENOMEM: wait before trying again, never spin
    failed,        // anything else (errno in error)
};

struct AcceptOutcome {
    AcceptStatus status;
    AcceptedClient client;
    int error = 0;
};

// The accepted socket is non-blocking unless `blocking` (the blocking architectures block in
// recv() and send() on it). TCP_NODELAY comes from the listener, or is set here when
// `set_no_delay` (a listener whose clients do not inherit it).
AcceptOutcome accept_client(int listener_fd, bool blocking = false, bool set_no_delay = false);
inline AcceptOutcome accept_client(const Listener& listener, bool blocking = false) {
    return accept_client(listener.fd.get(), blocking, !listener.clients_inherit_no_delay);
}

// A connected stream socket someone else accepted (inetd's nowait mode, systemd's Accept=yes).
Result<AcceptedClient> adopt_connection(int fd);

}  // namespace zen
