// The listening socket: bound here from HOST/PORT (later issues add adopting one from inetd or
// systemd), and accepting that reports every outcome as a value.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/result.hpp"
#include "net/address.hpp"
#include "net/fd.hpp"
#include "net/io.hpp"

namespace zen {

struct Listener {
    Fd fd;  // non-blocking, close-on-exec, with client_options
    std::string display;  // for "Listening at ...": the host as given, the port actually bound
    std::uint16_t port = 0;
    SocketAddress bound;
    // What each accepted connection gets: TCP_NODELAY, keepalive, TCP_USER_TIMEOUT.
    ClientSocketOptions client_options;
    // Linux copies these options from the listener to each connection as the handshake
    // completes, so zen sets them once, on the listener, before listen(). A listener passed
    // without them (systemd without NoDelay=true, inetd, a hand-over from a zen with other
    // options) gets them when it is adopted, but the clients already in its queue then lack them:
    // this many of the first ones accepted (the queue is first in, first out) get them one by one
    // (options_to_set()). In shared memory, so that prefork's workers count down one number.
    std::shared_ptr<std::atomic<int>> queued_without_options;
};

// Binds and listens (SO_REUSEADDR; an IPv6 wildcard also takes IPv4 clients). Tries each
// address HOST resolves to and keeps the first that binds. With reuse_port, SO_REUSEPORT too,
// so that siblings can bind the same address (see open_sibling_listener).
Result<Listener> open_listener(std::string_view host, std::uint16_t port, int backlog, bool reuse_port = false,
                               const ClientSocketOptions& client_options = {});

// Another SO_REUSEPORT listener on the address `first` (opened with reuse_port) is bound to;
// the kernel spreads new connections across all of them.
Result<Listener> open_sibling_listener(const Listener& first, int backlog);

// A listening socket someone else bound (inetd's wait mode, systemd's Accept=no): it must be a
// listening stream socket. It is made non-blocking and close-on-exec, and given client_options.
Result<Listener> adopt_listener(int fd, const ClientSocketOptions& client_options = {});

struct AcceptedClient {
    Fd fd;  // close-on-exec, the listener's client options; non-blocking unless accepted for a blocking architecture
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
// recv() and send() on it). Its options come from the listener, or are set here from `set_here`
// (a listener whose clients do not inherit them).
AcceptOutcome accept_client(int listener_fd, bool blocking = false, const ClientSocketOptions* set_here = nullptr);
// The options a client just accepted from `listener` must be given one by one; null: none, it
// inherited them. Call once per accepted client, in the order they were accepted.
inline const ClientSocketOptions* options_to_set(const Listener& listener) {
    if (!listener.queued_without_options) return nullptr;
    std::atomic<int>& queued = *listener.queued_without_options;
    int left = queued.load(std::memory_order_relaxed);
    while (left > 0 && !queued.compare_exchange_weak(left, left - 1, std::memory_order_relaxed)) {
    }
    return left > 0 ? &listener.client_options : nullptr;
}
inline AcceptOutcome accept_client(const Listener& listener, bool blocking = false) {
    return accept_client(listener.fd.get(), blocking, options_to_set(listener));
}

// A connected stream socket someone else accepted (inetd's nowait mode, systemd's Accept=yes),
// given client_options.
Result<AcceptedClient> adopt_connection(int fd, const ClientSocketOptions& client_options = {});

}  // namespace zen
