#include "proto/bytes_repr.hpp"

namespace zen {

std::string bytes_repr(std::string_view bytes, std::size_t max_bytes) {
    const std::string_view shown = bytes.substr(0, max_bytes);
    const bool double_quote =
        shown.find('\'') != std::string_view::npos && shown.find('"') == std::string_view::npos;
    const char quote = double_quote ? '"' : '\'';

    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(shown.size() + 3);
    out += 'b';
    out += quote;
    for (const char c : shown) {
        const auto byte = static_cast<unsigned char>(c);
        if (c == quote || c == '\\') {
            out += '\\';
            out += c;
        } else if (c == '\t') {
            out += "\\t";
        } else if (c == '\n') {
            out += "\\n";
        } else if (c == '\r') {
            out += "\\r";
        } else if (byte < 0x20 || byte >= 0x7f) {
            out += "\\x";
            out += hex[byte >> 4];
            out += hex[byte & 0xf];
        } else {
            out += c;
        }
    }
    out += quote;
    if (shown.size() < bytes.size()) {
        out += "... (" + std::to_string(bytes.size()) + " bytes)";
    }
    return out;
}

}  // namespace zen
