#include "base/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace zen {

namespace {

std::string kind_of(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

}  // namespace

Result<std::string> read_bounded_file(const std::string& path, std::size_t max_bytes) {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; the check below refuses it anyway.
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return Error{"cannot open " + path + ": " + std::strerror(errno)};
    struct stat status {};
    std::string contents;
    std::string failure;
    if (::fstat(fd, &status) != 0) {
        failure = "cannot read " + path + ": " + std::strerror(errno);
    } else if (!S_ISREG(status.st_mode)) {
        failure = path + " is " + kind_of(status.st_mode) + ", not a regular file";
    } else if (static_cast<std::size_t>(status.st_size) > max_bytes) {
        failure = path + " is larger than " + std::to_string(max_bytes) + " bytes";
    } else {
        char buffer[65536];
        for (;;) {
            const ssize_t n = ::read(fd, buffer, sizeof buffer);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                failure = "cannot read " + path + ": " + std::strerror(errno);
                break;
            }
            if (n == 0) break;
            contents.append(buffer, static_cast<std::size_t>(n));
            if (contents.size() > max_bytes) {  // it grew while we read it
                failure = path + " is larger than " + std::to_string(max_bytes) + " bytes";
                break;
            }
        }
    }
    ::close(fd);
    if (!failure.empty()) return Error{failure};
    return contents;
}

std::string shortened(std::string_view text, std::size_t width) {
    if (text.size() <= width) return std::string(text);
    return std::string(text.substr(0, width)) + "...";
}

}  // namespace zen
