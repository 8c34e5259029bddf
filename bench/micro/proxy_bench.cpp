// The PROXY protocol header reader (src/net/proxy_protocol.hpp), once per header: a new reader,
// as the servers make one per connection under --proxy-protocol, fed the header with the first
// question behind it, as haproxy sends them in one packet. Time and `per_item` are per header.
#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <string_view>

#include "micro.hpp"
#include "net/proxy_protocol.hpp"

namespace zen {
namespace {

constexpr std::string_view question = "Beautiful is better than?";

std::string v2_header(unsigned char family, int address_length, const char* source, const char* destination) {
    std::string block(static_cast<std::size_t>(2 * address_length + 4), '\0');
    const int af = family == 0x11 ? AF_INET : AF_INET6;
    inet_pton(af, source, block.data());
    inet_pton(af, destination, block.data() + address_length);
    const std::uint16_t ports[] = {htons(51234), htons(1060)};
    std::memcpy(block.data() + 2 * address_length, ports, sizeof ports);
    std::string header("\r\n\r\n\0\r\nQUIT\n", 12);
    header += static_cast<char>(0x21);  // version 2, PROXY
    header += static_cast<char>(family);
    header += static_cast<char>(block.size() >> 8);
    header += static_cast<char>(block.size() & 0xff);
    return header + block;
}

struct Header {
    std::string bytes;   // the header alone
    std::string source;  // the client it names, as the log writes it
};

Header v1_tcp4() { return {"PROXY TCP4 127.0.0.7 127.0.0.1 51234 1060\r\n", "('127.0.0.7', 51234)"}; }
Header v1_tcp6() { return {"PROXY TCP6 2001:db8::7 2001:db8::1 51234 1060\r\n", "('2001:db8::7', 51234, 0, 0)"}; }
Header v2_tcp4() { return {v2_header(0x11, 4, "127.0.0.7", "127.0.0.1"), "('127.0.0.7', 51234)"}; }
Header v2_tcp6() { return {v2_header(0x21, 16, "2001:db8::7", "2001:db8::1"), "('2001:db8::7', 51234, 0, 0)"}; }

// piece: 0 for the header and question in one read, else bytes per read (stopping once the
// reader has decided).
ProxyHeaderReader read_header(std::string_view bytes, std::size_t piece) {
    ProxyHeaderReader reader;
    if (piece == 0) {
        reader.feed(bytes);
        return reader;
    }
    while (!bytes.empty() && reader.status() == ProxyHeaderReader::Status::need_more) {
        reader.feed(bytes.substr(0, piece));
        bytes.remove_prefix(std::min(piece, bytes.size()));
    }
    return reader;
}

void proxy_header(benchmark::State& state, const Header& header, std::size_t piece) {
    const std::string bytes = header.bytes + std::string(question);
    {
        const ProxyHeaderReader reader = read_header(bytes, piece);
        if (reader.status() != ProxyHeaderReader::Status::header || !reader.relayed() ||
            format_address(reader.source()) != header.source ||
            (piece == 0 && reader.remainder() != question)) {
            micro::fail(state, "the header was not read as relaying " + header.source + ": " + reader.error());
            return;
        }
    }
    const micro::AllocationCount allocations;
    for (auto _ : state) {
        ProxyHeaderReader reader = read_header(bytes, piece);
        benchmark::DoNotOptimize(reader);
    }
    allocations.report(state);
    micro::count_items(state, 1);
}

BENCHMARK_CAPTURE(proxy_header, v1_tcp4, v1_tcp4(), 0);
BENCHMARK_CAPTURE(proxy_header, v1_tcp6, v1_tcp6(), 0);
BENCHMARK_CAPTURE(proxy_header, v2_tcp4, v2_tcp4(), 0);
BENCHMARK_CAPTURE(proxy_header, v2_tcp6, v2_tcp6(), 0);
BENCHMARK_CAPTURE(proxy_header, v1_tcp4_byte_by_byte, v1_tcp4(), 1);
BENCHMARK_CAPTURE(proxy_header, v2_tcp4_byte_by_byte, v2_tcp4(), 1);

// A direct client under --proxy-protocol: its first read is a question, not a header.
void proxy_not_a_header(benchmark::State& state) {
    if (const ProxyHeaderReader reader = read_header(question, 0);
        reader.status() != ProxyHeaderReader::Status::not_a_header || reader.remainder() != question) {
        micro::fail(state, "a question was not passed through as not_a_header");
        return;
    }
    const micro::AllocationCount allocations;
    for (auto _ : state) {
        ProxyHeaderReader reader = read_header(question, 0);
        benchmark::DoNotOptimize(reader);
    }
    allocations.report(state);
    micro::count_items(state, 1);
}
BENCHMARK(proxy_not_a_header);

}  // namespace
}  // namespace zen
