// The registry of --arch names: what `zen serve` looks an architecture up in. The list itself is
// architectures.def, one line per architecture.
#pragma once

#include <string_view>
#include <vector>

#include "net/listener.hpp"
#include "runtime/options.hpp"

namespace zen {

// Serves until a stop, a quit or --exit-idle; returns the process exit code.
using ServeFunction = int (*)(Listener& listener, const ServerContext& context);

struct Architecture {
    std::string_view name;
    std::string_view model;  // one line for --help
    ServeFunction serve;
    bool blocking = false;    // a thread per client blocks in recv() (else an event loop)
    bool reuse_port = false;  // binds SO_REUSEPORT listeners of its own: adopts none
};

const std::vector<Architecture>& architectures();
const Architecture* find_architecture(std::string_view name);

#define ZEN_ARCHITECTURE(name, kind, own_listeners, function, model) \
    int function(Listener& listener, const ServerContext& context);
#include "servers/architectures.def"
#undef ZEN_ARCHITECTURE

}  // namespace zen
