// The one list the conformance suite runs against: every --arch (and, later, launch mode).
// An architecture is done when every test in conformance_test.cpp passes for it.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace zen::test {

struct ServerVariant {
    std::string name;               // test name suffix
    std::vector<std::string> args;  // added to `zen serve HOST -p 0`
};

// gtest prints a parameter with this instead of dumping its bytes.
inline void PrintTo(const ServerVariant& variant, std::ostream* out) { *out << variant.name; }

inline const std::vector<ServerVariant> conformance_variants = {
    {"single", {"--arch", "single"}},
    {"threaded", {"--arch", "threaded"}},
    {"per_client", {"--arch", "per-client"}},
    {"prefork", {"--arch", "prefork"}},
    {"poll", {"--arch", "poll"}},
    {"epoll", {"--arch", "epoll"}},
    {"callbacks", {"--arch", "callbacks"}},
    {"chat", {"--arch", "chat"}},
    {"coroutines", {"--arch", "coroutines"}},
    {"reuseport", {"--arch", "reuseport", "--workers", "2"}},
    {"uring", {"--arch", "uring"}},
    // The path a kernel without multishot accept (5.19) and receive (6.0) takes by itself.
    {"uring_oneshot", {"--arch", "uring", "--no-multishot"}},
};

}  // namespace zen::test
