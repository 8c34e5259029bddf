#include "net/listener.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <fcntl.h>
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <limits>
#include <new>

#include "net/io.hpp"

namespace zen {

namespace {

Result<Fd> bind_one(const SocketAddress& address, int backlog, bool reuse_port, const ClientSocketOptions& client) {
    Fd fd(::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return Error{errno_text(errno)};
    const int on = 1;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (reuse_port && ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) != 0) {
        return Error{"SO_REUSEPORT: " + errno_text(errno)};
    }
    if (address.family() == AF_INET6) {
        const int off = 0;  // dual-stack: the book's servers were IPv4 only
        ::setsockopt(fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof off);
    }
    if (::bind(fd.get(), address.get(), address.length) != 0) return Error{errno_text(errno)};
    // Before listen(): inherited by every accepted socket, the first one too; no setsockopt per client.
    set_client_options(fd.get(), client);
    if (::listen(fd.get(), backlog) != 0) return Error{errno_text(errno)};
    return fd;
}

}  // namespace

Result<Listener> open_listener(std::string_view host, std::uint16_t port, int backlog, bool reuse_port,
                               const ClientSocketOptions& client_options) {
    auto addresses = resolve(host, port, true);
    if (!addresses) return Error{addresses.error()};

    std::string failures;
    for (const SocketAddress& address : *addresses) {
        auto fd = bind_one(address, backlog, reuse_port, client_options);
        if (fd) {
            SocketAddress bound;
            bound.length = sizeof bound.storage;
            ::getsockname(fd->get(), bound.get(), &bound.length);
            Listener listener;
            listener.bound = bound;
            listener.port = address_port(bound);
            listener.display = format_address(host, listener.port);
            listener.fd = std::move(fd).value();
            listener.client_options = client_options;
            return listener;
        }
        // The wildcard pair fails twice for one reason (e.g. port in use): say it once.
        if (failures.find(fd.error()) != std::string::npos) continue;
        if (!failures.empty()) failures += "; ";
        failures += fd.error();
    }
    return Error{"cannot listen on " + format_address(host, port) + ": " + failures};
}

Result<Listener> open_sibling_listener(const Listener& first, int backlog) {
    auto fd = bind_one(first.bound, backlog, true, first.client_options);
    if (!fd) return Error{"cannot listen on " + first.display + " again: " + fd.error()};
    Listener sibling;
    sibling.fd = std::move(fd).value();
    sibling.display = first.display;
    sibling.port = first.port;
    sibling.bound = first.bound;
    sibling.client_options = first.client_options;
    return sibling;
}

namespace {

// How many connections wait in a listening socket's accept queue (TCP_INFO's tcpi_unacked, as
// ss's Recv-Q); -1 if that cannot be read.
int accept_queue_length(int fd) {
    tcp_info info{};
    socklen_t length = sizeof info;
    if (::getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) != 0) return -1;
    return static_cast<int>(std::min<std::uint32_t>(info.tcpi_unacked, std::numeric_limits<int>::max()));
}

// A counter in anonymous shared memory, created before any fork(): lock-free atomics are
// address-free, so every worker process counts down the same one. Null if none can be mapped (then
// every client is given the options: no lookup can say which lack them).
std::shared_ptr<std::atomic<int>> shared_counter(int value) {
    void* memory = ::mmap(nullptr, sizeof(std::atomic<int>), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (memory == MAP_FAILED) return std::make_shared<std::atomic<int>>(std::numeric_limits<int>::max());
    auto* counter = new (memory) std::atomic<int>(value);
    return std::shared_ptr<std::atomic<int>>(counter, [](std::atomic<int>* shared) { ::munmap(shared, sizeof *shared); });
}

// "a listening TCP socket" or "a connected TCP socket" or the reason it is neither.
Result<bool> stream_socket_listening(int fd) {
    int type = 0;
    socklen_t length = sizeof type;
    if (::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) != 0) {
        return Error{"fd " + std::to_string(fd) + " is not a socket (" + errno_text(errno) + ")"};
    }
    if (type != SOCK_STREAM) return Error{"fd " + std::to_string(fd) + " is not a stream socket"};
    int listening = 0;
    length = sizeof listening;
    ::getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length);
    return listening != 0;
}

}  // namespace

Result<Listener> adopt_listener(int fd, const ClientSocketOptions& client_options) {
    auto listening = stream_socket_listening(fd);
    if (!listening) return Error{listening.error()};
    if (!*listening) return Error{"fd " + std::to_string(fd) + " is a connected socket, not a listening one"};
    set_nonblocking(fd);
    ::fcntl(fd, F_SETFD, FD_CLOEXEC);
    Listener listener;
    // A listener handed over by a zen with the same options (SIGUSR2), or by systemd with
    // NoDelay=true and matching KeepAlive settings, has them already; otherwise they are set now,
    // for the clients to come, and the ones already queued get them one by one.
    listener.client_options = client_options;
    if (!has_client_options(fd, client_options)) {
        set_client_options(fd, client_options);
        // Read after setting them: every client queued now may lack them, every later one has them.
        if (const int queued = accept_queue_length(fd); queued != 0) {
            listener.queued_without_options = shared_counter(queued < 0 ? std::numeric_limits<int>::max() : queued);
        }
    }
    listener.fd.reset(fd);
    listener.bound.length = sizeof listener.bound.storage;
    ::getsockname(fd, listener.bound.get(), &listener.bound.length);
    listener.port = address_port(listener.bound);
    listener.display = format_address(listener.bound);
    return listener;
}

Result<AcceptedClient> adopt_connection(int fd, const ClientSocketOptions& client_options) {
    auto listening = stream_socket_listening(fd);
    if (!listening) return Error{listening.error()};
    if (*listening) return Error{"fd " + std::to_string(fd) + " is a listening socket, not a connection"};
    set_nonblocking(fd);
    set_client_options(fd, client_options);
    AcceptedClient client;
    client.fd.reset(fd);
    client.peer.length = sizeof client.peer.storage;
    ::getpeername(fd, client.peer.get(), &client.peer.length);
    return client;
}

AcceptOutcome accept_client(int listener_fd, bool blocking, const ClientSocketOptions* set_here) {
    AcceptOutcome outcome{AcceptStatus::accepted, {}};
    for (;;) {
        outcome.client.peer.length = sizeof outcome.client.peer.storage;
        const int fd = ::accept4(listener_fd, outcome.client.peer.get(), &outcome.client.peer.length,
                                 (blocking ? 0 : SOCK_NONBLOCK) | SOCK_CLOEXEC);
        if (fd >= 0) {
            outcome.client.fd.reset(fd);
            if (set_here != nullptr) set_client_options(fd, *set_here);  // else they came from the listener
            return outcome;
        }
        outcome.error = errno;
        switch (errno) {
            case EINTR:
                continue;
            case EAGAIN:
#if EAGAIN != EWOULDBLOCK
            case EWOULDBLOCK:
#endif
                outcome.status = AcceptStatus::would_block;
                return outcome;
            case ECONNABORTED:
            case EPROTO:
            case EPERM:  // a firewall rule refused it
            case ENETDOWN:
            case ENOPROTOOPT:
            case EHOSTDOWN:
            case ENONET:
            case EHOSTUNREACH:
            case EOPNOTSUPP:
            case ENETUNREACH:
                outcome.status = AcceptStatus::client_gone;
                return outcome;
            case EMFILE:
            case ENFILE:
            case ENOBUFS:
            case ENOMEM:
                outcome.status = AcceptStatus::out_of_fds;
                return outcome;
            default:
                outcome.status = AcceptStatus::failed;
                return outcome;
        }
    }
}

}  // namespace zen
