// The server half of --arch callbacks and --arch chat: accepting on the event loop
// (src/loop/), the connection table, and the stop / quit / --exit-idle / drain sequence. The
// protocols those two files define only talk to one client each.
#pragma once

#include <functional>
#include <memory>

#include "loop/transport.hpp"
#include "servers/server.hpp"

namespace zen {

// A protocol zen's framework servers can stop: drain() answers what has arrived and closes.
class DrainableProtocol : public loop::Protocol {
public:
    virtual void drain() = 0;
};

using ProtocolFactory = std::function<std::unique_ptr<DrainableProtocol>()>;

int serve_on_event_loop(Listener& listener, const ServerContext& context, const ProtocolFactory& make_protocol);

}  // namespace zen
