#include "servers/registry.hpp"

namespace zen {

const std::vector<Architecture>& architectures() {
    static const std::vector<Architecture> all = {
#define ZEN_ARCHITECTURE(name, kind, own_listeners, function, model) \
    {name, model, function, std::string_view(#kind) == "blocking", own_listeners},
#include "servers/architectures.def"
#undef ZEN_ARCHITECTURE
    };
    return all;
}

const Architecture* find_architecture(std::string_view name) {
    for (const Architecture& architecture : architectures()) {
        if (architecture.name == name) return &architecture;
    }
    return nullptr;
}

}  // namespace zen
