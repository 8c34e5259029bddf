// libFuzzer target: the PROXY protocol reader. The same bytes fed whole, one at a time and in
// two pieces must give the same verdict, source and remainder; it never buffers past its bound.
// A v1 line it accepts must also pass a second, independent reading of the specification's
// words (below), and give the source that reading names. fuzz_proxy.dict holds the words, so the
// fuzzer builds lines of them rather than waiting to guess "TCP6" byte by byte.
#include <arpa/inet.h>

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

// The v1 line as the specification words it: "PROXY", a protocol, two addresses, two ports,
// single spaces, CRLF, printable ASCII, 107 bytes at most. Returns the source as format_address()
// writes it, or "" when the line is not a valid relayed header.
std::string v1_source_by_the_words(std::string_view bytes) {
    const std::size_t newline = bytes.find('\n');
    if (newline == std::string_view::npos || newline + 1 > zen::max_proxy_v1_line) return "";
    if (newline == 0 || bytes[newline - 1] != '\r') return "";
    const std::string_view line = bytes.substr(0, newline - 1);
    for (const char c : line) {
        if (c < 0x20 || c > 0x7e) return "";
    }
    std::string_view words[6];
    std::size_t count = 0;
    std::size_t start = 0;
    for (std::size_t i = 0; i <= line.size(); ++i) {
        if (i < line.size() && line[i] != ' ') continue;
        if (count == 6 || i == start) return "";  // a seventh word, or two spaces together
        words[count++] = line.substr(start, i - start);
        start = i + 1;
    }
    if (count != 6 || words[0] != "PROXY") return "";
    const bool ipv4 = words[1] == "TCP4";
    if (!ipv4 && words[1] != "TCP6") return "";
    unsigned char address[16];
    for (const std::string_view text : {words[2], words[3]}) {
        if (inet_pton(ipv4 ? AF_INET : AF_INET6, std::string(text).c_str(), address) != 1) return "";
    }
    for (const std::string_view port : {words[4], words[5]}) {
        if (port.empty() || port.size() > 5 || (port.size() > 1 && port[0] == '0')) return "";
        unsigned value = 0;
        for (const char c : port) {
            if (c < '0' || c > '9') return "";
            value = value * 10 + static_cast<unsigned>(c - '0');
        }
        if (value > 65535) return "";
    }
    const auto port = htons(static_cast<std::uint16_t>(std::stoul(std::string(words[4]))));
    zen::SocketAddress source;
    if (ipv4) {
        source.storage.in4.sin_family = AF_INET;
        source.storage.in4.sin_port = port;
        inet_pton(AF_INET, std::string(words[2]).c_str(), &source.storage.in4.sin_addr);
        source.length = sizeof(sockaddr_in);
    } else {
        source.storage.in6.sin6_family = AF_INET6;
        source.storage.in6.sin6_port = port;
        inet_pton(AF_INET6, std::string(words[2]).c_str(), &source.storage.in6.sin6_addr);
        source.length = sizeof(sockaddr_in6);
    }
    return zen::format_address(source);
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

    // The two readings of a v1 line agree: what the words call a relayed header, the reader
    // accepts with that source, and the reader accepts no relayed v1 line the words refuse.
    if (bytes.starts_with("PROXY T")) {
        const std::string expected = v1_source_by_the_words(bytes);
        if (!expected.empty()) {
            check(whole.status == zen::ProxyHeaderReader::Status::header);
            check(whole.source == expected);
            check(whole.remainder == bytes.substr(bytes.find('\n') + 1));
        } else if (whole.status == zen::ProxyHeaderReader::Status::header) {
            check(whole.source.empty());  // only UNKNOWN may pass without a source
        }
    }
    return 0;
}
