#include "servers/conversation.hpp"

#include <poll.h>

#include <algorithm>

#include "net/io.hpp"
#include "net/signals.hpp"

namespace zen {

namespace {

Clock::time_point after(Clock::time_point from, std::chrono::milliseconds limit) {
    return limit.count() > 0 ? from + limit : Clock::time_point::max();
}

std::string seconds_text(std::chrono::milliseconds limit) {
    const auto ms = limit.count();
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
    return std::to_string(ms) + " ms";
}

}  // namespace

void converse(AcceptedClient client, const ServerContext& context) {
    const std::string peer = format_address(client.peer);
    log_accepted(context, peer);

    const ServeOptions& options = context.options;
    Session session(context.table, options.limits);
    const int fd = client.fd.get();
    char buffer[16 * 1024];
    auto last_activity = Clock::now();
    constexpr auto never = Clock::time_point::max();
    auto question_deadline = never;  // while a question is incomplete
    bool stopping = false;
    auto stop_deadline = never;

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
            const auto deadline = stopping ? stop_deadline : after(last_activity, options.idle_timeout);
            const WaitOutcome waited = wait_for(fd, POLLOUT, stopping ? -1 : stop_fd(), deadline);
            if (waited == WaitOutcome::timed_out) {
                log_client_error(context, peer,
                                 stopping ? "not reading its answers; closed as the server stops"
                                          : "not reading its answers for " + seconds_text(options.idle_timeout));
                return;
            }
            if (waited == WaitOutcome::stopped) {
                stopping = true;
                stop_deadline = Clock::now() + stop_flush_limit;
            }
        }

        if (session.done()) {
            log_session_end(context, peer, session);
            if (session.status() == Session::Status::too_long) {
                close_gracefully(std::move(client.fd), close_linger);
            }
            return;
        }

        if (stopping) {
            // Stopping: answer what has already arrived, without waiting for more.
            const IoResult got = Clock::now() < stop_deadline ? receive_some(fd, buffer, sizeof buffer)
                                                               : IoResult{IoStatus::would_block};
            if (got.status == IoStatus::ok) {
                session.receive({buffer, got.bytes});
                continue;
            }
            if (got.status == IoStatus::eof) {
                session.receive_eof();
                continue;
            }
            context.log.connection(LogLevel::info, "closed_on_stop", peer,
                                   "Client socket to " + peer + " closed: server stopping");
            close_gracefully(std::move(client.fd), close_linger);
            return;
        }

        if (!session.has_partial_question()) {
            question_deadline = never;
        } else if (question_deadline == never) {
            question_deadline = after(Clock::now(), options.question_timeout);
        }
        const auto deadline = std::min(question_deadline, after(last_activity, options.idle_timeout));
        const WaitOutcome waited = wait_for(fd, POLLIN, stop_fd(), deadline);
        if (waited == WaitOutcome::stopped) {
            stopping = true;
            stop_deadline = Clock::now() + stop_flush_limit;
            continue;
        }
        if (waited == WaitOutcome::timed_out) {
            if (Clock::now() >= question_deadline) {
                log_client_error(context, peer,
                                 "question not finished within " + seconds_text(options.question_timeout));
            } else {
                log_client_error(context, peer, "idle for " + seconds_text(options.idle_timeout));
            }
            return;
        }

        const IoResult got = receive_some(fd, buffer, sizeof buffer);
        switch (got.status) {
            case IoStatus::ok:
                session.receive({buffer, got.bytes});
                last_activity = Clock::now();
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
