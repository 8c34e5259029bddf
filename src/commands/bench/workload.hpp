// What `zen bench` asks and what it accepts as the answer: the Zen table by default, or
// --question/--answer pairs for any protocol whose answers end with one suffix byte
// (redis inline PING, memcached version). Pure: no sockets.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"

namespace zen {

struct Exchange {
    std::string question;
    std::string answer;  // exactly what the server must send back, suffix included
};

struct Workload {
    std::vector<Exchange> exchanges;
    char suffix = '.';  // an answer ends at the first suffix byte
    std::size_t longest_answer = 0;
};

// C-style escapes as typed on a command line: \r \n \t \0 \\ \xHH. Anything else after a
// backslash is an error, so a typo does not silently send the wrong bytes.
Result<std::string> decode_escapes(std::string_view text);

// The book's three aphorisms with their answers, suffix '.'.
Workload zen_workload();

// Pairs given on the command line (raw, undecoded). The suffix defaults to the last byte the
// answers share; every answer must end with it and hold it nowhere else, or answers could not
// be told apart on the stream.
Result<Workload> custom_workload(const std::vector<std::string>& questions, const std::vector<std::string>& answers,
                                 const std::string& suffix);

// Where the answer that starts at `data` ends: the index just past the suffix byte, or npos.
inline std::size_t answer_end(std::string_view data, char suffix) {
    const std::size_t at = data.find(suffix);
    return at == std::string_view::npos ? at : at + 1;
}

}  // namespace zen
