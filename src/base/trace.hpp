// A bounded recorder of Trace Event Format events (the JSON that Perfetto, chrome://tracing and
// speedscope open): what `zen serve --trace` and `zen bench --trace` write. Generic: it knows
// events, threads and processes, not connections; the words of each event are its callers'.
//
// Memory: one region of max_events fixed-size events, mapped once (MAP_NORESERVE: a page costs
// memory only once an event lands in it) and shared, so the processes prefork fork()s record into
// it and the parent writes everything. Each thread claims a chunk of the region at a time and
// fills it without a lock; nothing is allocated per event. Once the region is used up recording
// stops, for good, with one line in the log. Times are CLOCK_MONOTONIC (base/clock.hpp), written in
// microseconds, so the server's and the load generator's files share one clock.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/clock.hpp"
#include "base/result.hpp"

namespace zen {

class TraceRecorder {
public:
    static constexpr std::size_t default_max_events = 1'000'000;
    static constexpr std::size_t largest_max_events = 50'000'000;
    static constexpr std::size_t text_capacity = 48;  // longer texts are cut
    // Told once, from whichever thread found the region full, that recording has stopped.
    using FullReport = std::function<void(const std::string& line)>;

    // Room for max_events events (128 bytes each).
    static Result<std::unique_ptr<TraceRecorder>> create(std::size_t max_events, FullReport on_full);
    ~TraceRecorder();
    TraceRecorder(const TraceRecorder&) = delete;
    TraceRecorder& operator=(const TraceRecorder&) = delete;

    // The clock events are stamped with.
    static TimePoint now() { return Clock::now(); }
    // A fresh id, unique across every process sharing the recorder: connections, flows.
    std::uint64_t next_id() { return shared_->next_id.fetch_add(1, std::memory_order_relaxed) + 1; }

    // Names this process (prefork's children rename theirs) and this thread, as M events.
    void name_process(std::string_view name);
    void name_thread(std::string_view name);

    // An X event: `name` (static text) on this thread from `start` to `end`. `connection` and
    // `question` (0: none) and `due` (never: none) become its args.
    void complete(const char* name, TimePoint start, TimePoint end, std::uint64_t connection,
                  std::uint64_t question = 0, TimePoint due = never);
    // An instant (i) on this thread; `text`, if any, is its args' `key`.
    void instant(const char* name, std::uint64_t connection, const char* key = nullptr, std::string_view text = {});
    // An async span (b ... e) in `category`, keyed by id; the text is the args' `key`.
    void begin_async(const char* category, const char* name, std::uint64_t id, const char* key, std::string_view text,
                     TimePoint at = now());
    void end_async(const char* category, const char* name, std::uint64_t id, const char* key, std::string_view text,
                   TimePoint at = now());
    // A flow (s on the thread that starts it, f on the one it reaches); the f binds to the next
    // slice that thread records.
    void flow_start(const char* name, std::uint64_t id, TimePoint at = now());
    void flow_end(const char* name, std::uint64_t id, TimePoint at = now());

    // Events recorded so far, and whether the cap was reached.
    std::size_t recorded() const;
    bool stopped() const { return shared_->stopped.load(std::memory_order_relaxed); }
    std::size_t max_events() const { return capacity_; }

    // Writes every event so far as one Trace Event Format document (to PATH.tmp, then renamed
    // over PATH). Safe while threads record: an event half written is left out. "%p" in the path
    // is this process's pid.
    Result<Ok> write(const std::string& path) const;
    // The document as text (for tests and small traces).
    std::string json() const;

private:
    struct Event;
    struct Shared {
        std::atomic<std::uint64_t> next_chunk{0};
        std::atomic<std::uint64_t> next_id{0};
        std::atomic<bool> stopped{false};
    };
    TraceRecorder(void* region, std::size_t bytes, std::size_t capacity, FullReport on_full);

    Event* claim();  // the next free event of this thread's chunk, or null once stopped
    Event* begin(const char* name, TimePoint at);
    static void commit(Event* event, char phase);
    // Every phase but X and M: a name, a time, and what keys it (category, id) or says it (text).
    void tagged(char phase, const char* name, TimePoint at, const char* category, std::uint64_t id, const char* key,
                std::string_view text);
    void write_to(std::FILE* out) const;

    void* region_;
    std::size_t region_bytes_;
    std::size_t capacity_;
    Shared* shared_;
    Event* events_;
    FullReport on_full_;
};

// "%p" in a path replaced by the pid (one file per process: inetd's, or each side of a hand-over).
std::string expand_trace_path(std::string_view path, long pid);

}  // namespace zen
