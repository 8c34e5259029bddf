// The lists the suites run against, derived from the registry's one list
// (src/servers/architectures.def): a new architecture is in every suite without a line here.
// An architecture is done when every test in conformance_test.cpp passes for it.
#pragma once

#include <algorithm>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace zen::test {

struct ServerVariant {
    std::string name;               // test name suffix
    std::vector<std::string> args;  // added to `zen serve HOST -p 0`
};

// gtest prints a parameter with this instead of dumping its bytes.
inline void PrintTo(const ServerVariant& variant, std::ostream* out) { *out << variant.name; }

// One line of the registry.
struct RegisteredArchitecture {
    std::string_view name;
    bool blocking;       // a thread blocks per client (else an event loop)
    bool own_listeners;  // binds SO_REUSEPORT listeners of its own: adopts none
};

inline const std::vector<RegisteredArchitecture> registered_architectures = {
#define ZEN_ARCHITECTURE(name, kind, own_listeners, function, model) \
    {name, std::string_view(#kind) == "blocking", own_listeners},
#include "servers/architectures.def"
#undef ZEN_ARCHITECTURE
};

// An architecture as the suites start it: reuseport with two loops (whatever the CPUs here),
// unless a suite sets --workers in its own tests (plain).
inline ServerVariant variant_of(const RegisteredArchitecture& architecture, bool plain = false) {
    ServerVariant variant{std::string(architecture.name), {"--arch", std::string(architecture.name)}};
    std::replace(variant.name.begin(), variant.name.end(), '-', '_');
    if (architecture.name == "reuseport" && !plain) variant.args.insert(variant.args.end(), {"--workers", "2"});
    return variant;
}

// The suites' variants beyond one per architecture: uring on the path a kernel without multishot
// accept (5.19) and receive (6.0) takes by itself.
inline const std::vector<ServerVariant> further_variants = {
    {"uring_oneshot", {"--arch", "uring", "--no-multishot"}},
};

// Every architecture that `keep` admits, then the further variants of those.
template <class Keep>
std::vector<ServerVariant> variants_where(Keep keep, bool plain = false) {
    std::vector<ServerVariant> variants;
    for (const RegisteredArchitecture& architecture : registered_architectures) {
        if (keep(architecture)) variants.push_back(variant_of(architecture, plain));
    }
    for (const ServerVariant& further : further_variants) {
        const std::string& arch = further.args[1];
        const auto base = std::find_if(registered_architectures.begin(), registered_architectures.end(),
                                       [&](const RegisteredArchitecture& a) { return a.name == arch; });
        if (base != registered_architectures.end() && keep(*base)) variants.push_back(further);
    }
    return variants;
}

// Every architecture, and its further variants.
inline const std::vector<ServerVariant> conformance_variants = variants_where([](const auto&) { return true; });
// The event-driven ones (one thread serves many clients), plain: their suite sets --workers.
inline const std::vector<ServerVariant> event_variants =
    variants_where([](const RegisteredArchitecture& a) { return !a.blocking; }, true);
// Those that adopt a listener passed to them (systemd, inetd wait, a hand-over).
inline const std::vector<ServerVariant> adopting_variants =
    variants_where([](const RegisteredArchitecture& a) { return !a.own_listeners; });

}  // namespace zen::test
