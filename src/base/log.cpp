#include "base/log.hpp"

#include <fcntl.h>
#include <unistd.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <syslog.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <sys/stat.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <new>
#include <stdexcept>
#include <thread>
#include <vector>

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

// --log-file. The thread that logs never touches the file: it formats the line and appends it
// to a queue in memory (bounded; a line that does not fit is dropped), and a writer
// thread of the sink's own writes the queue out in writes of whole lines on an O_APPEND
// descriptor, so lines stay whole even with prefork's workers appending to the same file. A full
// pipe, a slow disk or a reopen that hangs in open() stalls that writer alone: no serving thread,
// no signal's handling and no stop waits behind file I/O. The reopen runs on the writer too, between
// two batches, so a line goes whole to the old file or the new one. fork(): the child has no writer
// thread and starts its own at its first line (the parent's queued lines stay the parent's).
struct FileLogQueue {
    std::mutex mutex;
    std::condition_variable wake;      // the writer: lines, a reopen, or the end
    std::condition_variable progress;  // flush() and reopen(): a batch or a reopen is done
    std::string path;
    int fd = -1;
    std::string pending;          // formatted lines not yet handed to write()
    bool writing = false;         // the writer holds a batch taken from `pending`
    bool closing = false;         // the sink is gone: write what is left, then end
    bool writer_running = false;  // in this process: a fork()'s child has none until its first line
    std::atomic<bool> writer_started{false};  // the writer thread runs (its start-up is over)
    std::uint64_t reopens_asked = 0;
    std::uint64_t reopens_done = 0;
    std::size_t reopen_mark = 0;  // with a reopen asked: the bytes of `pending` logged before it
    std::string reopen_error;     // of the last reopen done; empty if it succeeded
    std::uint64_t batches_done = 0;
    std::uint64_t stalled_at = ~std::uint64_t{0};  // batches_done when a flush last gave up

    ~FileLogQueue() {
        if (fd >= 0) ::close(fd);
    }
};

namespace {

// More than any burst of lines zen writes; a file that takes nothing for this long loses lines
// rather than the server's memory.
constexpr std::size_t max_pending_log_bytes = 4 << 20;
// How long a reopen is waited for before SIGHUP's line says it is still pending.
constexpr std::chrono::milliseconds reopen_wait{200};

std::mutex queues_mutex;  // fork() holds it and every queue's mutex, so no queue is half-changed
std::vector<FileLogQueue*> queues;

const char* kind_of_file(mode_t mode) {
    if (S_ISDIR(mode)) return "a directory";
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

// The log file, for appending. O_NONBLOCK for the open alone: a FIFO with no reader is refused
// (ENXIO) instead of waiting for one. `only_files`: anything but a regular file or a character
// device (/dev/null, a terminal) is refused too, as a SIGHUP's reopen does: a FIFO that replaced
// the log is no rotated log, and a reader that never reads would stall the writer for good.
// System calls only, no allocation: the writer runs it without the queue's lock, and fork()
// must not find it inside the allocator (ASan's is not fork-safe). describe() makes the words.
struct OpenedLog {
    int fd = -1;
    int error = 0;         // errno of the open or fstat that failed
    mode_t refused = 0;    // the file type refused, when `only_files`
};

OpenedLog open_log_file(const char* path, bool only_files) {
    const auto acceptable = [&](mode_t mode) { return !only_files || S_ISREG(mode) || S_ISCHR(mode); };
    struct stat named {};
    if (::stat(path, &named) == 0 && !acceptable(named.st_mode)) return {-1, 0, named.st_mode};
    const int fd = ::open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644);
    if (fd < 0) return {-1, errno, 0};
    struct stat status {};
    if (::fstat(fd, &status) != 0) {
        const int error = errno;
        ::close(fd);
        return {-1, error, 0};
    }
    if (!acceptable(status.st_mode)) {
        ::close(fd);
        return {-1, 0, status.st_mode};
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);  // the writer thread may wait; no one else does
    return {fd, 0, 0};
}

std::string describe(const std::string& path, const OpenedLog& opened) {
    if (opened.refused != 0) {
        return path + " is " + kind_of_file(opened.refused) + ", not a regular file or a character device";
    }
    return path + ": " + std::strerror(opened.error);
}

// In writes of whole lines of at most PIPE_BUF bytes together (a longer line alone): each is
// atomic on a pipe too, so prefork's workers sharing a FIFO never cut each other's lines.
void write_lines(int fd, std::string_view lines) {
    while (!lines.empty()) {
        std::size_t size = lines.size();
        if (size > PIPE_BUF) {
            const std::size_t last_end = lines.rfind('\n', PIPE_BUF - 1);
            const std::size_t first_end = lines.find('\n');
            size = last_end != std::string_view::npos ? last_end + 1
                   : first_end != std::string_view::npos ? first_end + 1
                                                        : lines.size();
        }
        std::string_view chunk = lines.substr(0, size);
        lines.remove_prefix(size);
        while (!chunk.empty()) {
            const ssize_t n = ::write(fd, chunk.data(), chunk.size());
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return;  // a full disk loses the lines; the server goes on
            chunk.remove_prefix(static_cast<std::size_t>(n));
        }
    }
}

void run_log_writer(const std::shared_ptr<FileLogQueue>& queue) {
    std::unique_lock lock(queue->mutex);
    for (;;) {
        queue->wake.wait(lock, [&] {
            return !queue->pending.empty() || queue->reopens_asked != queue->reopens_done || queue->closing;
        });
        const bool reopen_asked = queue->reopens_asked != queue->reopens_done;
        // With a reopen asked: first the lines logged before it, to the old file, then the
        // reopen, however many lines keep coming meanwhile.
        const std::size_t before = reopen_asked ? std::min(queue->reopen_mark, queue->pending.size()) : queue->pending.size();
        if (before > 0) {
            std::string batch = queue->pending.substr(0, before);
            queue->pending.erase(0, before);
            if (reopen_asked) queue->reopen_mark = 0;
            queue->writing = true;
            const int fd = queue->fd;
            lock.unlock();
            write_lines(fd, batch);
            lock.lock();
            queue->writing = false;
            ++queue->batches_done;
        } else if (reopen_asked) {
            const std::uint64_t asked = queue->reopens_asked;
            const std::string path = queue->path;
            queue->writing = true;
            lock.unlock();
            const OpenedLog opened = open_log_file(path.c_str(), true);
            lock.lock();
            queue->writing = false;
            if (opened.fd >= 0) {
                ::close(std::exchange(queue->fd, opened.fd));
                queue->reopen_error.clear();
            } else {
                queue->reopen_error = describe(path, opened);
            }
            queue->reopens_done = asked;
        } else {
            queue->writer_running = false;
            queue->progress.notify_all();
            return;  // closing, and nothing is left
        }
        queue->progress.notify_all();
    }
}

// With the queue's lock held: a writer thread for this process, if it has none (the first line,
// or the first after a fork()).
// Returns once the thread runs: a fork() during a thread's start-up can hand the child an
// allocator lock no one will release (ASan's allocator is not fork-safe), and prefork forks
// right after its first lines.
void ensure_writer(const std::shared_ptr<FileLogQueue>& queue) {
    if (queue->writer_running) return;
    queue->writer_running = true;
    queue->writer_started.store(false);
    std::thread([queue] {
        queue->writer_started.store(true);
        queue->writer_started.notify_one();
        run_log_writer(queue);
    }).detach();
    queue->writer_started.wait(false);
}

void register_fork_handlers() {
    static const bool registered = [] {
        ::pthread_atfork(
            [] {
                queues_mutex.lock();
                for (FileLogQueue* queue : queues) queue->mutex.lock();
            },
            [] {
                for (FileLogQueue* queue : queues) queue->mutex.unlock();
                queues_mutex.unlock();
            },
            [] {
                for (FileLogQueue* queue : queues) {
                    queue->pending.clear();  // the parent's lines: its writer writes them
                    queue->writing = false;
                    queue->writer_running = false;
                    queue->reopens_done = queue->reopens_asked;
                    queue->reopen_mark = 0;
                    // A condition variable the parent's threads waited on is not theirs to
                    // signal here; this process starts with fresh ones.
                    new (&queue->wake) std::condition_variable();
                    new (&queue->progress) std::condition_variable();
                    queue->mutex.unlock();
                }
                queues_mutex.unlock();
            });
        return true;
    }();
    (void)registered;
}

}  // namespace

class ReopenableFileSink final : public spdlog::sinks::base_sink<std::mutex> {
public:
    explicit ReopenableFileSink(std::string path) : queue_(std::make_shared<FileLogQueue>()) {
        const OpenedLog opened = open_log_file(path.c_str(), false);
        if (opened.fd < 0) throw std::runtime_error(describe(path, opened));
        queue_->path = std::move(path);
        queue_->fd = opened.fd;
        register_fork_handlers();
        const std::lock_guard lock(queues_mutex);
        queues.push_back(queue_.get());
    }
    ~ReopenableFileSink() override {
        flush_until(Clock::now() + std::chrono::milliseconds(500));
        {
            const std::lock_guard lock(queues_mutex);
            std::erase(queues, queue_.get());
        }
        const std::lock_guard lock(queue_->mutex);
        queue_->closing = true;  // a writer stuck in write() keeps the queue alive and ends with the process
        queue_->wake.notify_all();
    }

    Result<Ok> reopen() {
        std::unique_lock lock(queue_->mutex);
        ensure_writer(queue_);
        if (queue_->reopens_asked == queue_->reopens_done) queue_->reopen_mark = queue_->pending.size();
        const std::uint64_t ticket = ++queue_->reopens_asked;
        queue_->wake.notify_all();
        if (!queue_->progress.wait_for(lock, reopen_wait, [&] { return queue_->reopens_done >= ticket; })) {
            return Error{queue_->path + ": the reopen is still waiting on the file after " +
                         std::to_string(reopen_wait.count()) + " ms (it is done in the background)"};
        }
        if (!queue_->reopen_error.empty()) return Error{queue_->reopen_error};
        return Ok{};
    }

    bool flush_until(TimePoint deadline) {
        std::unique_lock lock(queue_->mutex);
        if (queue_->pending.empty() && !queue_->writing) return true;
        if (queue_->stalled_at == queue_->batches_done) return false;  // stuck since the last try: no second wait
        ensure_writer(queue_);
        if (queue_->progress.wait_until(lock, deadline, [&] { return queue_->pending.empty() && !queue_->writing; })) {
            return true;
        }
        queue_->stalled_at = queue_->batches_done;
        return false;
    }

protected:
    // Called under base_sink's mutex, which guards the formatter alone: no file I/O here.
    void sink_it_(const spdlog::details::log_msg& message) override {
        spdlog::memory_buf_t line;
        formatter_->format(message, line);
        const std::lock_guard lock(queue_->mutex);
        if (queue_->pending.size() + line.size() > max_pending_log_bytes) return;  // the file takes nothing
        queue_->pending.append(line.data(), line.size());
        ensure_writer(queue_);
        queue_->wake.notify_one();
    }
    void flush_() override {}

private:
    std::shared_ptr<FileLogQueue> queue_;
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

bool Log::flush_until(TimePoint deadline) { return file_sink_ ? file_sink_->flush_until(deadline) : true; }

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
