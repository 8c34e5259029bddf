// Whether the server accepts clients now: what --metrics' /ready answers. It turns true once,
// when the server has set up and starts accepting, and false for good the moment a stop (SIGTERM,
// SIGINT) or a quit (SIGQUIT, --exit-idle) is requested, before the drain begins.
#pragma once

namespace zen {

// The server accepts clients from now on (called where it announces "Listening at").
void announce_accepting();
// True from announce_accepting() until a stop or quit is requested.
bool accepting();

}  // namespace zen
