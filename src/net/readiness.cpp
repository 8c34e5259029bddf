#include "net/readiness.hpp"

#include <atomic>

#include "net/signals.hpp"

namespace zen {

namespace {

std::atomic<bool> accepting_announced{false};

}  // namespace

void announce_accepting() { accepting_announced.store(true); }

// The stop and quit flags are set by the signal handlers and request_quit() themselves, so the
// answer turns at the very moment the server stops accepting, with nothing else to call.
bool accepting() { return accepting_announced.load() && !stop_requested() && !quit_requested(); }

}  // namespace zen
