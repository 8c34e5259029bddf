#include "base/trace.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <mutex>

#include "base/build_info.hpp"
#include "base/text.hpp"

namespace zen {

// One event, whatever its phase: 128 bytes, so a cap of N events is N × 128 bytes at most.
struct TraceRecorder::Event {
    std::atomic<char> phase;  // 0: empty, or being written; stored last (release)
    std::uint8_t text_size;
    std::int32_t pid;
    std::int32_t tid;
    const char* name;      // static text
    const char* category;  // static text, or null
    const char* key;       // the args' key of text, or null
    std::int64_t ts_ns;
    std::int64_t dur_ns;
    std::int64_t due_ns;  // LLONG_MIN: none
    std::uint64_t id;
    std::uint64_t question;
    char text[text_capacity];
};

namespace {

// Events a thread claims at a time: 32 KiB, so a thread's claims are rare and an idle one
// wastes little of the cap.
constexpr std::size_t chunk_events = 256;

// This thread's chunk. After fork() the child's copy describes a chunk its parent goes on
// filling: the atfork handler forgets it, so the child claims its own.
struct Cursor {
    const void* owner = nullptr;
    void* next = nullptr;
    void* end = nullptr;
    std::int32_t pid = 0;
    std::int32_t tid = 0;
};
thread_local Cursor cursor;

void forget_cursor_in_child() { cursor = Cursor{}; }

std::int64_t ns_of(TimePoint at) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(at.time_since_epoch()).count();
}

void put_text(char* into, std::uint8_t& size, std::string_view text) {
    const std::size_t n = std::min(text.size(), TraceRecorder::text_capacity);
    if (n > 0) std::memcpy(into, text.data(), n);  // an empty view's data() may be null
    size = static_cast<std::uint8_t>(n);
}

// A JSON string's contents: quotes, backslashes and control bytes escaped; bytes past ASCII
// become '?', since a cut text may end inside a UTF-8 sequence.
void put_json_string(std::FILE* out, std::string_view text) {
    std::fputc('"', out);
    for (const char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            std::fputc('\\', out);
            std::fputc(c, out);
        } else if (byte < 0x20) {
            std::fprintf(out, "\\u%04x", byte);
        } else if (byte >= 0x80) {
            std::fputc('?', out);
        } else {
            std::fputc(c, out);
        }
    }
    std::fputc('"', out);
}

// Microseconds with three decimals, from nanoseconds.
void put_micros(std::FILE* out, std::int64_t ns) {
    if (ns < 0) {
        std::fputc('-', out);
        ns = -ns;
    }
    std::fprintf(out, "%lld.%03lld", static_cast<long long>(ns / 1000), static_cast<long long>(ns % 1000));
}

}  // namespace

std::string expand_trace_path(std::string_view path, long pid) {
    std::string out;
    for (std::size_t i = 0; i < path.size(); ++i) {
        if (path[i] == '%' && i + 1 < path.size() && path[i + 1] == 'p') {
            out += std::to_string(pid);
            ++i;
        } else if (path[i] == '%' && i + 1 < path.size() && path[i + 1] == '%') {
            out += '%';
            ++i;
        } else {
            out += path[i];
        }
    }
    return out;
}

Result<std::unique_ptr<TraceRecorder>> TraceRecorder::create(std::size_t max_events, FullReport on_full) {
    if (max_events == 0 || max_events > largest_max_events) {
        return Error{"--trace-max-events must be from 1 to " + std::to_string(largest_max_events)};
    }
    static std::once_flag atfork;
    std::call_once(atfork, [] { ::pthread_atfork(nullptr, nullptr, forget_cursor_in_child); });
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t header = (sizeof(Shared) + page - 1) / page * page;
    const std::size_t bytes = header + max_events * sizeof(Event);
    void* region = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (region == MAP_FAILED) return Error{"cannot map room for the trace: " + errno_text(errno)};
    return std::unique_ptr<TraceRecorder>(new TraceRecorder(region, bytes, max_events, std::move(on_full)));
}

TraceRecorder::TraceRecorder(void* region, std::size_t bytes, std::size_t capacity, FullReport on_full)
    : region_(region), region_bytes_(bytes), capacity_(capacity), on_full_(std::move(on_full)) {
    static_assert(sizeof(Event) == 128 && std::atomic<char>::is_always_lock_free);
    shared_ = new (region) Shared;
    const std::size_t page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    const std::size_t header = (sizeof(Shared) + page - 1) / page * page;
    events_ = reinterpret_cast<Event*>(static_cast<char*>(region) + header);  // zero pages: every phase 0
}

TraceRecorder::~TraceRecorder() {
    if (cursor.owner == shared_) cursor = Cursor{};
    ::munmap(region_, region_bytes_);
}

TraceRecorder::Event* TraceRecorder::claim() {
    if (shared_->stopped.load(std::memory_order_relaxed)) return nullptr;
    if (cursor.owner == shared_ && cursor.next != cursor.end) {
        Event* event = static_cast<Event*>(cursor.next);
        cursor.next = event + 1;
        return event;
    }
    const std::uint64_t chunk = shared_->next_chunk.fetch_add(1, std::memory_order_relaxed);
    const std::size_t first = chunk * chunk_events;
    if (first >= capacity_) {
        if (!shared_->stopped.exchange(true) && on_full_) {
            on_full_("Trace: recording stopped at --trace-max-events (" + std::to_string(capacity_) +
                     " events); the trace keeps what came before");
        }
        return nullptr;
    }
    cursor.owner = shared_;
    cursor.next = events_ + first + 1;
    cursor.end = events_ + std::min(first + chunk_events, capacity_);
    cursor.pid = static_cast<std::int32_t>(::getpid());
    cursor.tid = static_cast<std::int32_t>(::gettid());
    return events_ + first;
}

TraceRecorder::Event* TraceRecorder::begin(const char* name, TimePoint at) {
    Event* event = claim();
    if (event == nullptr) return nullptr;
    event->text_size = 0;
    event->pid = cursor.pid;
    event->tid = cursor.tid;
    event->name = name;
    event->category = nullptr;
    event->key = nullptr;
    event->ts_ns = ns_of(at);
    event->dur_ns = 0;
    event->due_ns = LLONG_MIN;
    event->id = 0;
    event->question = 0;
    return event;
}

void TraceRecorder::commit(Event* event, char phase) { event->phase.store(phase, std::memory_order_release); }

void TraceRecorder::name_process(std::string_view name) {
    if (Event* event = begin("process_name", now())) {
        put_text(event->text, event->text_size, name);
        commit(event, 'P');
    }
}

void TraceRecorder::name_thread(std::string_view name) {
    if (Event* event = begin("thread_name", now())) {
        put_text(event->text, event->text_size, name);
        commit(event, 'T');
    }
}

void TraceRecorder::complete(const char* name, TimePoint start, TimePoint end, std::uint64_t connection,
                             std::uint64_t question, TimePoint due) {
    if (Event* event = begin(name, start)) {
        event->dur_ns = std::max<std::int64_t>(0, ns_of(end) - event->ts_ns);
        event->id = connection;
        event->question = question;
        if (due != never) event->due_ns = ns_of(due);
        commit(event, 'X');
    }
}

void TraceRecorder::tagged(char phase, const char* name, TimePoint at, const char* category, std::uint64_t id,
                           const char* key, std::string_view text) {
    if (Event* event = begin(name, at)) {
        event->category = category;
        event->id = id;
        event->key = key;
        put_text(event->text, event->text_size, text);
        commit(event, phase);
    }
}

void TraceRecorder::instant(const char* name, std::uint64_t connection, const char* key, std::string_view text) {
    tagged('i', name, now(), nullptr, connection, key, text);
}

void TraceRecorder::begin_async(const char* category, const char* name, std::uint64_t id, const char* key,
                                std::string_view text, TimePoint at) {
    tagged('b', name, at, category, id, key, text);
}

void TraceRecorder::end_async(const char* category, const char* name, std::uint64_t id, const char* key,
                              std::string_view text, TimePoint at) {
    tagged('e', name, at, category, id, key, text);
}

void TraceRecorder::flow_start(const char* name, std::uint64_t id, TimePoint at) {
    tagged('s', name, at, "flow", id, nullptr, {});
}

void TraceRecorder::flow_end(const char* name, std::uint64_t id, TimePoint at) {
    tagged('f', name, at, "flow", id, nullptr, {});
}

std::size_t TraceRecorder::recorded() const {
    const std::size_t claimed = std::min<std::size_t>(shared_->next_chunk.load() * chunk_events, capacity_);
    std::size_t count = 0;
    for (std::size_t i = 0; i < claimed; ++i) count += events_[i].phase.load(std::memory_order_acquire) != 0;
    return count;
}

void TraceRecorder::write_to(std::FILE* out) const {
    std::fputs("{\"traceEvents\":[", out);
    const std::size_t claimed = std::min<std::size_t>(shared_->next_chunk.load() * chunk_events, capacity_);
    bool first = true;
    for (std::size_t i = 0; i < claimed; ++i) {
        const Event& event = events_[i];
        const char phase = event.phase.load(std::memory_order_acquire);
        if (phase == 0) continue;
        std::fputs(first ? "\n" : ",\n", out);
        first = false;
        const std::string_view text(event.text, event.text_size);
        if (phase == 'P' || phase == 'T') {
            std::fprintf(out, "{\"name\":\"%s\",\"ph\":\"M\",\"pid\":%d,\"tid\":%d,\"args\":{\"name\":", event.name,
                         event.pid, event.tid);
            put_json_string(out, text);
            std::fputs("}}", out);
            continue;
        }
        std::fprintf(out, "{\"name\":\"%s\",\"ph\":\"%c\",", event.name, phase);
        if (event.category != nullptr) std::fprintf(out, "\"cat\":\"%s\",", event.category);
        std::fputs("\"ts\":", out);
        put_micros(out, event.ts_ns);
        if (phase == 'X') {
            std::fputs(",\"dur\":", out);
            put_micros(out, event.dur_ns);
        }
        std::fprintf(out, ",\"pid\":%d,\"tid\":%d", event.pid, event.tid);
        if (phase == 'i') std::fputs(",\"s\":\"t\"", out);
        if (phase == 'b' || phase == 'e' || phase == 's' || phase == 'f') {
            std::fprintf(out, ",\"id\":%llu", static_cast<unsigned long long>(event.id));
        }
        // Args: the connection (for X and i), the question's number, the due time, the text.
        bool args = false;
        const auto arg = [&](const char* key) {
            std::fprintf(out, "%s\"%s\":", args ? "," : ",\"args\":{", key);
            args = true;
        };
        if ((phase == 'X' || phase == 'i') && event.id != 0) {
            arg("connection");
            std::fprintf(out, "%llu", static_cast<unsigned long long>(event.id));
        }
        if (event.question != 0) {
            arg("question");
            std::fprintf(out, "%llu", static_cast<unsigned long long>(event.question));
        }
        if (event.due_ns != LLONG_MIN) {
            arg("due");
            put_micros(out, event.due_ns);
        }
        if (event.key != nullptr) {
            arg(event.key);
            put_json_string(out, text);
        }
        if (args) std::fputc('}', out);
        std::fputc('}', out);
    }
    std::fprintf(out, "\n],\"displayTimeUnit\":\"ms\",\"otherData\":{\"producer\":\"zen %s\",\"clock\":\"CLOCK_MONOTONIC\"}}\n",
                 std::string(zen_version()).c_str());
}

Result<Ok> TraceRecorder::write(const std::string& path) const {
    const std::string target = expand_trace_path(path, static_cast<long>(::getpid()));
    const std::string temporary = target + ".tmp";
    // O_NONBLOCK and a regular file only: a FIFO put at the temporary name would make the open
    // (or the writes) wait for a reader for ever, on SIGUSR1's thread or in the stop.
    const int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0644);
    if (fd < 0) return Error{"cannot write the trace to " + target + ": " + errno_text(errno)};
    struct stat status {};
    if (::fstat(fd, &status) != 0 || !S_ISREG(status.st_mode)) {
        ::close(fd);
        return Error{"cannot write the trace to " + target + ": " + temporary + " is not a regular file"};
    }
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    std::FILE* out = ::fdopen(fd, "w");
    if (out == nullptr) {
        const int error = errno;
        ::close(fd);
        return Error{"cannot write the trace to " + target + ": " + errno_text(error)};
    }
    write_to(out);
    const bool failed = std::ferror(out) != 0;
    const int error = errno;
    if (std::fclose(out) != 0 || failed) {
        ::unlink(temporary.c_str());
        return Error{"cannot write the trace to " + target + ": " + errno_text(failed ? error : errno)};
    }
    if (::rename(temporary.c_str(), target.c_str()) != 0) {
        const int rename_error = errno;
        ::unlink(temporary.c_str());
        return Error{"cannot write the trace to " + target + ": " + errno_text(rename_error)};
    }
    return Ok{};
}

std::string TraceRecorder::json() const {
    char* data = nullptr;
    std::size_t size = 0;
    std::FILE* out = ::open_memstream(&data, &size);
    if (out == nullptr) return {};
    write_to(out);
    std::fclose(out);
    std::string text(data, size);
    std::free(data);
    return text;
}

}  // namespace zen
