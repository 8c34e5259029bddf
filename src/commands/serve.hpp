// `zen serve`: its command line and its start-up (table, listener, signals, log).
#pragma once

#include "runtime/options.hpp"

namespace CLI {
class App;
}

namespace zen {

CLI::App* add_serve_command(CLI::App& zen, ServeOptions& options);
int run_serve(const ServeOptions& options);

}  // namespace zen
