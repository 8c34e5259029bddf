#include "net/connector.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>

#include "net/io.hpp"

namespace zen {

namespace {

Result<Fd> connect_one(const SocketAddress& address, std::chrono::milliseconds timeout) {
    Fd fd(::socket(address.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (!fd.valid()) return Error{errno_text(errno)};
    if (::connect(fd.get(), address.get(), address.length) != 0) {
        if (errno != EINPROGRESS) return Error{errno_text(errno)};
        if (wait_for(fd.get(), POLLOUT, -1, Clock::now() + timeout) != WaitOutcome::ready) return Error{"timed out"};
        int error = 0;
        socklen_t length = sizeof error;
        ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length);
        if (error != 0) return Error{errno_text(error)};
    }
    ::fcntl(fd.get(), F_SETFL, ::fcntl(fd.get(), F_GETFL) & ~O_NONBLOCK);
    timeval limit{};
    limit.tv_sec = timeout.count() / 1000;
    limit.tv_usec = (timeout.count() % 1000) * 1000;
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
    return fd;
}

}  // namespace

Result<Connection> connect_to(std::string_view host, std::uint16_t port, std::chrono::milliseconds timeout) {
    auto addresses = resolve(host, port, false);
    if (!addresses) return Error{addresses.error()};
    std::string failures;
    for (const SocketAddress& address : *addresses) {
        auto fd = connect_one(address, timeout);
        if (fd) return Connection{std::move(fd).value(), address};
        if (!failures.empty()) failures += "; ";
        failures += format_address(address) + ": " + fd.error();
    }
    return Error{"cannot connect to " + failures};
}

}  // namespace zen
