// One load-generating thread of `zen bench`: its own connections and its own epoll loop, no
// locks. Closed loop: each connection keeps `depth` questions in flight and asks again as soon
// as an answer comes. Open loop: questions are due on a fixed schedule (rate / threads), dealt
// round-robin to the connections; a question that cannot go out on time waits in its
// connection's backlog, and its latency still counts from when it was due (coordinated omission
// corrected); the uncorrected latency counts from when it was sent.
//
// Errors are counted per question lost, by the kind of event that lost it; an event that loses
// none (a refused connect) counts once. A broken connection is reconnected after a backoff (1 ms
// doubling to 250 ms, reset by a right answer).
//
// A server that closes a connection cleanly (EOF, not a reset) between two answers is doing what
// a stopping or restarting server does, so this is the HTTP/1.1 rule for a kept-alive connection
// (RFC 9112, 9.3.1): reconnect and send the questions still unanswered again, once each (they
// are idempotent). They are counted as `retried`, never twice as answered, and their latency
// still runs from when they were due. A second clean close under a retried question, an EOF in
// the middle of an answer, resets, timeouts and wrong answers stay errors. Nothing
// waits past the plan's end plus the timeout, so a dead server ends the run on time.
//
// With --reconnect N a connection closes itself once N questions on it are answered and opens
// again at once, as the book's client does with three; those openings are no reconnects.
//
// The end of the window (the plan's end, or earlier when the run is interrupted) is where the
// schedule stops, as in wrk2: questions still waiting to be sent then are dropped and counted as
// `unsent` (the server had fallen behind), not sent late. Questions already sent get their
// answers, up to the timeout; those answers are counted as `late`, and their latency is recorded.
#pragma once

#include <array>
#include <atomic>
#include <climits>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "base/trace.hpp"
#include "net/address.hpp"
#include "net/fd.hpp"
#include "commands/bench/latency_histogram.hpp"
#include "commands/bench/series.hpp"
#include "commands/bench/workload.hpp"

namespace zen {

enum class LoadError : std::size_t { connect, reset, closed, mismatch, timeout };
inline constexpr std::size_t load_error_kinds = 5;
inline constexpr std::array<const char*, load_error_kinds> load_error_names = {"connect", "reset", "closed",
                                                                                "mismatch", "timeout"};

// Monotonic nanoseconds, the clock every plan time is on.
std::int64_t monotonic_ns();

// Shared by the main thread and every load thread: a signal moves the end of the window to now,
// a second one abandons the wait for answers still in flight.
struct RunControl {
    std::atomic<std::int64_t> stop_ns{INT64_MAX};
    std::atomic<bool> abandon{false};
};

struct LoadPlan {
    SocketAddress target;
    const Workload* workload = nullptr;
    int depth = 1;
    double rate = 0;  // this thread's questions per second; 0 = closed loop
    std::int64_t start_ns = 0;
    std::int64_t measure_start_ns = 0;  // questions due before this are warm-up
    std::int64_t end_ns = 0;            // no question is due from here on
    std::int64_t timeout_ns = 0;        // for an answer, a connect, a wait in the backlog
    double phase = 0;                   // 0..1: where in the interval this thread's schedule starts
    const RunControl* control = nullptr;  // optional: an earlier end, read on every loop turn
    double connect_rate = 0;              // --connect-rate: this thread's new connections per second at
                                          // the start; 0 = all at once
    std::uint64_t reconnect_every = 0;    // --reconnect: close and reopen after this many questions
    std::uint64_t budget = UINT64_MAX;    // -n: questions to ask in the window; the window ends
                                          // once they are all answered or lost
    TraceRecorder* trace = nullptr;       // --trace: connects, questions, errors; else null
    int thread_number = 1;                // names the thread in the trace
};

struct LoadTally {
    std::uint64_t requests = 0;  // right answers to questions due in the measured window
    std::array<std::uint64_t, load_error_kinds> errors{};
    std::uint64_t reconnects = 0;  // connections opened again after an error or a server's close
    std::uint64_t opened = 0;      // connections opened in the window, every kind
    std::uint64_t open_at_end = 0;  // connections open when the window closed
    std::uint64_t retried = 0;  // questions sent again after the server closed cleanly under them
    std::uint64_t scheduled = 0;   // questions due in the window (in an open loop, the offered load)
    std::uint64_t late = 0;        // right answers, counted in requests, that came after the window
    std::uint64_t unanswered = 0;  // due in the window, never answered because the run ended (not errors)
    std::int64_t behind_ns = 0;    // at the end of the window: how long the oldest unanswered question was due
    LatencyHistogram corrected;    // from when each question was due
    LatencyHistogram uncorrected;  // from when each question was sent
    SecondSeries series;           // second by second, from the start of the window

    std::uint64_t error_total() const;
    void merge(const LoadTally& other);
};

class LoadThread {
public:
    LoadThread(const LoadPlan& plan, int connections);
    LoadThread(const LoadThread&) = delete;
    LoadThread& operator=(const LoadThread&) = delete;

    // Runs the plan to its end; call once, on the thread that owns this object.
    void run();

    const LoadTally& tally() const { return tally_; }
    // For the live progress line, read from another thread: totals including the warm-up.
    std::uint64_t answered_so_far() const { return answered_live_.load(std::memory_order_relaxed); }
    std::uint64_t errors_so_far() const { return errors_live_.load(std::memory_order_relaxed); }
    // After run(): when this thread's window closed (the plan's end, a signal, or -n reached).
    std::int64_t window_end_ns() const { return plan_.end_ns; }

private:
    struct Question {
        std::int64_t due_ns;
        std::int64_t sent_ns;
        std::uint32_t exchange;
        bool retried = false;  // sent again once already: a second clean close loses it
        std::uint32_t number = 0;  // on its connection, from 1 (the server's trace counts so too)
    };
    enum class State : std::uint8_t { waiting, connecting, open };
    struct Connection {
        Fd fd;
        State state = State::waiting;
        bool opened_before = false;
        bool recycled = false;          // closed by us for --reconnect: opening again is no reconnect
        std::uint64_t asked_here = 0;   // questions sent on this connection since it opened
        bool watching_writes = false;
        bool dirty = false;  // has output to flush before the loop sleeps
        std::uint32_t generation = 0;
        std::uint32_t next_exchange = 0;
        std::int64_t retry_at_ns = 0;  // waiting: when to connect; connecting: when to give up
        std::int64_t backoff_ns = 0;
        std::deque<Question> in_flight;
        std::deque<Question> retry;  // unanswered when the server closed cleanly: sent first
        std::deque<std::int64_t> backlog;  // open loop: due times of questions not yet sent
        std::string output;
        std::size_t output_sent = 0;
        std::string partial_answer;
        std::uint64_t trace_id = 0;        // --trace: this opening's id
        std::int64_t connect_started_ns = 0;
    };

    void start_connecting(std::uint32_t index, std::int64_t now);
    void on_open(std::uint32_t index, std::int64_t now);
    void on_event(std::uint32_t index, std::uint32_t events, std::int64_t now);
    void on_readable(std::uint32_t index, std::int64_t now);
    void on_answer(std::uint32_t index, std::string_view answer, std::int64_t now);
    void ask(Connection& connection, std::int64_t due, std::int64_t now);
    void refill(Connection& connection, std::int64_t now);
    void flush(std::uint32_t index, std::int64_t now);
    void fail(std::uint32_t index, LoadError kind, std::int64_t now);
    void on_server_close(std::uint32_t index, std::int64_t now);
    void recycle(std::uint32_t index, std::int64_t now);
    // `reason`: the trace's words for the close.
    void disconnect(Connection& connection, std::int64_t backoff_ns, std::int64_t now, const char* reason);
    void trace_opening(Connection& connection, std::int64_t now);
    void schedule_due_questions(std::int64_t now);
    void check_deadlines(std::int64_t now);
    bool finished(std::int64_t now) const;
    void watch(Connection& connection, std::uint32_t index, std::uint32_t events, bool add);
    void count_error(LoadError kind, std::uint64_t questions, std::int64_t now);
    void publish();
    std::size_t second_of(std::int64_t now) const;
    void close_window();
    bool budget_spent() const;
    // run()'s steps, each turn of its loop: follow the main thread's control, do what is due by
    // now, sleep in epoll until the next thing is due and take the events.
    void open_connections(std::int64_t now);  // all at once, or the first and the ramp's times
    bool follow_control();                    // true once a second signal abandons the run
    bool catch_up(std::int64_t now);          // true once the run is finished
    std::int64_t next_wake(std::int64_t now) const;
    void wait_and_dispatch(std::int64_t now);
    void settle(std::int64_t now);  // after the loop: what is left unanswered, lost or abandoned

    LoadPlan plan_;
    Fd epoll_;
    std::vector<Connection> connections_;
    std::vector<std::uint32_t> dirty_;
    std::vector<char> read_buffer_;
    LoadTally tally_;
    std::uint64_t answered_total_ = 0;
    std::uint64_t errors_total_ = 0;
    std::atomic<std::uint64_t> answered_live_{0};
    std::atomic<std::uint64_t> errors_live_{0};
    std::uint64_t scheduled_ = 0;  // open loop: questions dealt so far
    std::uint32_t next_connection_ = 0;
    std::int64_t next_check_ns_ = 0;
    bool have_epoll_pwait2_ = true;
    bool window_closed_ = false;
};

}  // namespace zen
