#include "net/privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>

#include "net/io.hpp"

namespace zen {

Result<Ok> drop_privileges(const std::string& name) {
    errno = 0;
    const passwd* user = ::getpwnam(name.c_str());
    if (user == nullptr) {
        return Error{"no user '" + name + "'" + (errno != 0 ? " (" + errno_text(errno) + ")" : std::string())};
    }
    if (::geteuid() == user->pw_uid && ::getegid() == user->pw_gid) return Ok{};
    if (::initgroups(user->pw_name, user->pw_gid) != 0 || ::setgid(user->pw_gid) != 0 ||
        ::setuid(user->pw_uid) != 0) {
        return Error{"cannot switch to user '" + name + "': " + errno_text(errno)};
    }
    if (::setuid(0) == 0) return Error{"switched to user '" + name + "' but could become root again"};
    return Ok{};
}

}  // namespace zen
