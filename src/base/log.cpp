#include "base/log.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <syslog.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>

namespace zen {

namespace {

spdlog::level::level_enum to_spdlog(LogLevel level) {
    switch (level) {
        case LogLevel::info: return spdlog::level::info;
        case LogLevel::warning: return spdlog::level::warn;
        case LogLevel::error: return spdlog::level::err;
    }
    return spdlog::level::info;
}

const char* level_name(LogLevel level) {
    switch (level) {
        case LogLevel::info: return "info";
        case LogLevel::warning: return "warning";
        case LogLevel::error: return "error";
    }
    return "info";
}

// The address and port inside a peer as format_address() writes it: ('127.0.0.1', 41285) or
// ('::1', 41285, 0, 0). False for anything else (a peer the log was given in another form).
bool split_peer(std::string_view peer, std::string& address, std::uint64_t& port) {
    if (!peer.starts_with("('")) return false;
    const std::size_t quote = peer.find('\'', 2);
    if (quote == std::string_view::npos || peer.substr(quote, 3) != "', ") return false;
    std::uint64_t value = 0;
    std::size_t at = quote + 3;
    const std::size_t digits_from = at;
    while (at < peer.size() && peer[at] >= '0' && peer[at] <= '9' && at - digits_from < 6) {
        value = value * 10 + static_cast<std::uint64_t>(peer[at] - '0');
        ++at;
    }
    if (at == digits_from || at >= peer.size() || (peer[at] != ')' && peer[at] != ',') || value > 65535) return false;
    address = peer.substr(2, quote - 2);
    port = value;
    return true;
}

}  // namespace

// --log-file: each line goes to the file in one write() on an O_APPEND descriptor, so it is on
// disk (in the kernel) at once and whole, even with prefork's workers appending to the same file.
// spdlog's own file sink cannot be reopened without closing first, which would lose a line
// written in between, or every line if the new open fails.
class ReopenableFileSink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    explicit ReopenableFileSink(std::string path) : path_(std::move(path)) {
        auto opened = open_file();
        if (!opened) throw std::runtime_error(opened.error());
        fd_ = *opened;
    }
    ~ReopenableFileSink() override { ::close(fd_); }

    Result<Ok> reopen() {
        auto opened = open_file();
        if (!opened) return Error{opened.error()};
        const std::lock_guard lock(mutex_);  // base_sink's: no line is being written meanwhile
        ::close(std::exchange(fd_, *opened));
        return Ok{};
    }

protected:
    void sink_it_(const spdlog::details::log_msg& message) override {
        spdlog::memory_buf_t line;
        formatter_->format(message, line);
        const char* data = line.data();
        std::size_t left = line.size();
        while (left > 0) {
            const ssize_t n = ::write(fd_, data, left);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return;  // a full disk loses the line; the server goes on
            data += n;
            left -= static_cast<std::size_t>(n);
        }
    }
    void flush_() override {}

private:
    Result<int> open_file() const {
        const int fd = ::open(path_.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) return Error{path_ + ": " + std::strerror(errno)};
        return fd;
    }

    std::string path_;
    int fd_ = -1;
};

namespace {

spdlog::sink_ptr make_sink(const LogOptions& options, std::shared_ptr<ReopenableFileSink>& file_sink) {
    if (!options.file.empty()) {
        file_sink = std::make_shared<ReopenableFileSink>(options.file);
        return file_sink;
    }
    if (options.syslog) return std::make_shared<spdlog::sinks::syslog_sink_mt>("zen", LOG_PID, LOG_DAEMON, false);
    return std::make_shared<spdlog::sinks::stdout_sink_mt>();
}

}  // namespace

Log::Log(LogOptions options)
    : options_(options), logger_(std::make_shared<spdlog::logger>("zen", make_sink(options_, file_sink_))) {
    if (options_.format == LogFormat::json) {
        // The time comes from spdlog; the rest of the object is built in write().
        logger_->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%eZ",%v)", spdlog::pattern_time_type::utc);
    } else if (options_.timestamps) {
        logger_->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %v", spdlog::pattern_time_type::utc);
    } else {
        logger_->set_pattern("%v");
    }
    logger_->set_level(spdlog::level::info);
    logger_->flush_on(spdlog::level::info);
}

Log::~Log() = default;

Result<Ok> Log::reopen() {
    if (!file_sink_) return Ok{};
    return file_sink_->reopen();
}

void Log::server(LogLevel level, std::string_view event, std::string_view message) {
    write(level, event, {}, message);
}

void Log::server(LogLevel level, std::string_view event, std::string_view message, const Fields& fields) {
    write(level, event, {}, message, fields);
}

void Log::write(LogLevel level, std::string_view event, std::string_view peer, std::string_view message,
                const Fields& fields) {
    if (options_.format == LogFormat::text) {
        logger_->log(to_spdlog(level), "{}", message);
        return;
    }
    nlohmann::ordered_json object_fields;
    object_fields["level"] = level_name(level);
    object_fields["event"] = event;
    if (!peer.empty()) {
        object_fields["peer"] = peer;
        std::string address;
        std::uint64_t port = 0;
        if (split_peer(peer, address, port)) {
            object_fields["peer_address"] = address;
            object_fields["peer_port"] = port;
        }
    }
    for (const auto& [name, value] : fields) object_fields[std::string(name)] = value;
    object_fields["message"] = message;
    std::string object = object_fields.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    object.erase(0, 1);  // the opening brace is in the pattern, before the time
    logger_->log(to_spdlog(level), "{}", object);
}

}  // namespace zen
