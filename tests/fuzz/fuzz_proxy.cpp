// libFuzzer target: the PROXY protocol reader. The same bytes fed whole, one at a time and in
// two pieces must give the same verdict, source and remainder; it never buffers past its bound.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "net/proxy_protocol.hpp"

namespace {

void check(bool condition) {
    if (!condition) std::abort();
}

struct Outcome {
    zen::ProxyHeaderReader::Status status;
    std::string remainder;
    std::string source;
};

Outcome read(std::string_view bytes, std::size_t piece) {
    zen::ProxyHeaderReader reader;
    while (!bytes.empty() && reader.status() == zen::ProxyHeaderReader::Status::need_more) {
        const std::size_t n = std::min(piece, bytes.size());
        reader.feed(bytes.substr(0, n));
        bytes.remove_prefix(n);
    }
    Outcome outcome{reader.status(), std::string(reader.remainder()) + std::string(bytes), ""};
    if (outcome.status == zen::ProxyHeaderReader::Status::header && reader.relayed()) {
        const int family = reader.source().family();
        check(family == AF_INET || family == AF_INET6);
        outcome.source = zen::format_address(reader.source());
    }
    if (outcome.status == zen::ProxyHeaderReader::Status::invalid) check(!reader.error().empty());
    return outcome;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    const Outcome whole = read(bytes, bytes.size() + 1);
    const Outcome bytewise = read(bytes, 1);
    const Outcome halves = read(bytes, size / 2 + 1);
    for (const Outcome* other : {&bytewise, &halves}) {
        check(other->status == whole.status);
        check(other->source == whole.source);
        if (whole.status != zen::ProxyHeaderReader::Status::invalid) check(other->remainder == whole.remainder);
    }
    if (whole.status == zen::ProxyHeaderReader::Status::need_more) check(size < zen::max_proxy_header);
    return 0;
}
