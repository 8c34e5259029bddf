// The server's log on stdout: the book's wording line by line (so its transcripts match), or one
// JSON object per line with --log-format json. Thread-safe. stdout and syslog lines are written
// as logged; --log-file lines are queued in memory and written by a thread of the log's own, so no
// caller ever waits on the file (a full pipe, a slow disk), and the file can be reopened at the
// same path (SIGHUP after logrotate renamed it) without any caller waiting on that either.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/clock.hpp"
#include "base/result.hpp"

namespace spdlog {
class logger;
}

namespace zen {
class ReopenableFileSink;
}

namespace zen {

enum class LogFormat { text, json };

struct LogOptions {
    LogFormat format = LogFormat::text;
    bool quiet = false;     // drop per-connection lines
    std::string file;       // append to this file instead of stdout
    bool syslog = false;    // send to syslog (daemon facility) instead of stdout
    bool timestamps = false;  // text lines begin with their UTC time (JSON lines always carry it)
};

enum class LogLevel { info, warning, error };

class Log {
public:
    // Throws std::runtime_error (spdlog's) if the log file cannot be opened.
    explicit Log(LogOptions options);
    ~Log();

    // Lines about the server itself ("Listening at ..."): always written.
    void server(LogLevel level, std::string_view event, std::string_view message);
    // A server line with numbers: text shows the message; JSON adds each field as a number.
    using Fields = std::vector<std::pair<std::string_view, std::uint64_t>>;
    void server(LogLevel level, std::string_view event, std::string_view message, const Fields& fields);
    // Lines about one client ("Accepted connection from ..."): dropped by --quiet. `message()`
    // builds the line and is called only when it is written, so a quiet server builds none (two
    // strings per short conversation otherwise made and thrown away).
    template <class Message>
    void connection(LogLevel level, std::string_view event, std::string_view peer, Message&& message) {
        if (!options_.quiet) write(level, event, peer, std::forward<Message>(message)());
    }

    // Whether there is a --log-file that reopen() would open again.
    bool has_file() const { return file_sink_ != nullptr; }
    // Opens --log-file again by its name and writes there from the next line on; a line is
    // written whole to the old file or the new one, never both. If the new open fails, or the
    // name is now neither a regular file nor a character device (a FIFO, a socket), the old file
    // stays in use. The open runs on the log's writer thread: waited for at most 200 ms, after which
    // the error says it is still pending (and it completes, or not, in the background). Without
    // a --log-file, does nothing.
    Result<Ok> reopen();
    // Waits until every --log-file line logged so far has been handed to write(), or until
    // `deadline`: false if lines were still queued then, and false at once if the writer has
    // not finished a write since the last flush gave up. For a process about to _exit() (the
    // destructor does the same, for at most 500 ms). Without a --log-file, true at once.
    bool flush_until(TimePoint deadline);

private:
    void write(LogLevel level, std::string_view event, std::string_view peer, std::string_view message,
               const Fields& fields = {});

    LogOptions options_;
    std::shared_ptr<ReopenableFileSink> file_sink_;  // null unless --log-file
    std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace zen
