// An asynchat-like layer on the event loop (Python's legacy asynchat, which srv_legacy2.py
// uses): the peer's bytes are split at a terminator and handed over as collect_incoming_data()
// pieces followed by found_terminator(); push() queues bytes to send and forgets them.
#pragma once

#include <string>
#include <string_view>

#include "loop/transport.hpp"

namespace zen::loop {

class AsyncChat : public Protocol {
public:
    void set_terminator(std::string terminator) { terminator_ = std::move(terminator); }
    const std::string& terminator() const { return terminator_; }

    // Fire and forget: the transport sends it when it can.
    void push(std::string_view data) { transport_->write(data); }
    // Closes once everything pushed has been sent.
    void close_when_done() { transport_->close(); }

    virtual void collect_incoming_data(std::string_view data) = 0;
    virtual void found_terminator() = 0;

    void connection_made(Transport& transport) override { transport_ = &transport; }
    void data_received(std::string_view data) override;

protected:
    Transport& transport() { return *transport_; }

private:
    // Splits data at the terminator; a tail that could begin one is kept in held_.
    void split(std::string_view data);

    Transport* transport_ = nullptr;
    std::string terminator_ = "\n";
    std::string held_;  // the end of earlier data, shorter than the terminator, that may begin one
};

}  // namespace zen::loop
