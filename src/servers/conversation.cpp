#include "servers/conversation.hpp"

#include <poll.h>

#include <algorithm>
#include <span>
#include <thread>

#include "net/io.hpp"
#include "net/signals.hpp"
#include "servers/connection_tracker.hpp"

namespace zen {

namespace {

constexpr auto never = Clock::time_point::max();


// Counts the conversation as open for --exit-idle for exactly as long as it exists.
class OpenConversation {
public:
    explicit OpenConversation(ConnectionTracker& tracker) : tracker_(tracker) { tracker_.opened(); }
    ~OpenConversation() { tracker_.closed(); }
    OpenConversation(const OpenConversation&) = delete;
    OpenConversation& operator=(const OpenConversation&) = delete;

private:
    ConnectionTracker& tracker_;
};

// Under --proxy-protocol: reads until the intake has decided. False: close the connection.
bool read_header(ClientIntake& intake, int fd, std::span<char> buffer) {
    while (intake.reading_header()) {
        const WaitOutcome waited = wait_for(fd, POLLIN, stop_fd(), intake.header_deadline());
        if (waited == WaitOutcome::stopped) return false;  // no question can have arrived yet
        if (waited == WaitOutcome::timed_out) {
            intake.header_timed_out();
            return false;
        }
        const IoResult got = receive_some(fd, buffer.data(), buffer.size());
        if (got.status == IoStatus::would_block) continue;
        if (got.status != IoStatus::ok) {
            intake.header_cut_short();
            return false;
        }
        if (intake.feed({buffer.data(), got.bytes}) == ClientIntake::Step::close) return false;
    }
    return true;
}

}  // namespace

void converse(AcceptedClient client, const ServerContext& context) {
    ClientIntake intake(context, client.peer, Clock::now());
    if (!intake.open(client.fd.get())) return;
    const OpenConversation open(context.tracker);
    char buffer[16 * 1024];
    if (!read_header(intake, client.fd.get(), buffer)) return;
    const std::string peer = intake.peer();

    const ServeOptions& options = context.options;
    // Blocking architectures have nothing better to do while a backend call is pending, so
    // --wait costs them exactly what --delay does: the thread sleeps.
    const auto work_per_answer = options.delay + options.wait;
    Session session(context.table, options.limits);
    const int fd = client.fd.get();
    auto last_activity = Clock::now();
    auto question_deadline = never;  // while a question is incomplete
    bool stopping = false;

    const auto receive = [&](std::string_view bytes) {
        const auto answers = receive_counted(context, session, bytes);
        if (work_per_answer.count() > 0) std::this_thread::sleep_for(work_per_answer * answers);
    };

    if (const std::string after_header = intake.take_remainder(); !after_header.empty()) receive(after_header);

    for (;;) {
        while (!session.pending_output().empty()) {
            const IoResult sent = send_some(fd, session.pending_output());
            if (sent.status == IoStatus::ok) {
                session.consume_output(sent.bytes);
                last_activity = Clock::now();
                continue;
            }
            if (sent.status == IoStatus::error) {
                log_client_error(context, peer, errno_text(sent.error));
                return;
            }
            const auto deadline =
                stopping ? drain_deadline(context) : deadline_after(last_activity, quiet_limit(options, true));
            const WaitOutcome waited = wait_for(fd, POLLOUT, stopping ? -1 : stop_fd(), deadline);
            if (waited == WaitOutcome::timed_out) {
                log_client_timeout(context, peer,
                                 stopping ? "not reading its answers; closed as the server stops"
                                          : "not reading its answers for " + duration_text(quiet_limit(options, true)));
                return;
            }
            if (waited == WaitOutcome::stopped) stopping = true;
        }

        if (session.done()) {
            log_session_end(context, peer, session);
            if (session.status() == Session::Status::too_long) {
                const auto linger = stopping ? std::min<std::chrono::milliseconds>(
                                                   close_linger, std::chrono::duration_cast<std::chrono::milliseconds>(
                                                                     drain_deadline(context) - Clock::now()))
                                             : close_linger;
                close_gracefully(std::move(client.fd), linger);
            }
            return;
        }

        if (stopping) {
            // Stopping: answer what has already arrived, without waiting for more.
            const IoResult got = Clock::now() < drain_deadline(context) ? receive_some(fd, buffer, sizeof buffer)
                                                                        : IoResult{IoStatus::would_block};
            if (got.status == IoStatus::ok) {
                receive({buffer, got.bytes});
                continue;
            }
            if (got.status == IoStatus::eof) {
                session.receive_eof();
                continue;
            }
            context.log.connection(LogLevel::info, "closed_on_stop", peer,
                                   "Client socket to " + peer + " closed: server stopping");
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(drain_deadline(context) - Clock::now());
            close_gracefully(std::move(client.fd), std::clamp(left, std::chrono::milliseconds(0), close_linger));
            return;
        }

        if (!session.has_partial_question()) {
            question_deadline = never;
        } else if (question_deadline == never) {
            question_deadline = deadline_after(Clock::now(), options.question_timeout);
        }
        const auto deadline = std::min(question_deadline, deadline_after(last_activity, options.idle_timeout));
        const WaitOutcome waited = wait_for(fd, POLLIN, stop_fd(), deadline);
        if (waited == WaitOutcome::stopped) {
            stopping = true;
            continue;
        }
        if (waited == WaitOutcome::timed_out) {
            if (Clock::now() >= question_deadline) {
                log_client_timeout(context, peer,
                                 "question not finished within " + duration_text(options.question_timeout));
            } else {
                log_client_timeout(context, peer, "idle for " + duration_text(options.idle_timeout));
            }
            return;
        }

        const IoResult got = receive_some(fd, buffer, sizeof buffer);
        switch (got.status) {
            case IoStatus::ok:
                last_activity = Clock::now();
                receive({buffer, got.bytes});
                break;
            case IoStatus::eof:
                session.receive_eof();
                break;
            case IoStatus::would_block:
                break;
            case IoStatus::error:
                log_client_error(context, peer, errno_text(got.error));
                return;
        }
    }
}

}  // namespace zen
