#include "metrics/exposition.hpp"

#include <charconv>
#include <cstdio>

namespace zen {

namespace {

// Appends one metric family: its HELP and TYPE lines, then its samples.
class Exposition {
public:
    void family(std::string_view name, std::string_view type, std::string_view help) {
        text_ += "# HELP " + std::string(name) + ' ' + std::string(help) + '\n';
        text_ += "# TYPE " + std::string(name) + ' ' + std::string(type) + '\n';
    }
    void sample(std::string_view name, std::string_view labels, std::uint64_t value) {
        sample_text(name, labels, std::to_string(value));
    }
    void sample(std::string_view name, std::string_view labels, double value) {
        char number[64];
        const auto written = std::to_chars(number, number + sizeof number, value);  // shortest exact form
        sample_text(name, labels, std::string_view(number, static_cast<std::size_t>(written.ptr - number)));
    }
    std::string take() { return std::move(text_); }

private:
    void sample_text(std::string_view name, std::string_view labels, std::string_view value) {
        text_ += name;
        if (!labels.empty()) text_ += '{' + std::string(labels) + '}';
        text_ += ' ';
        text_ += value;
        text_ += '\n';
    }
    std::string text_;
};

// A label value as the format wants it: backslash, double quote and newline escaped.
std::string label_value(std::string_view value) {
    std::string escaped;
    for (const char c : value) {
        if (c == '\\' || c == '"') escaped += '\\';
        if (c == '\n') {
            escaped += "\\n";
            continue;
        }
        escaped += c;
    }
    return escaped;
}

// "1e-06" and "0.0025" style bounds, as Prometheus clients print them.
std::string seconds_text(std::int64_t ns) {
    char number[32];
    std::snprintf(number, sizeof number, "%g", static_cast<double>(ns) / 1e9);
    return number;
}

void connection_families(Exposition& out, const ConnectionTracker& tracker) {
    const auto counter = [&](std::string_view name, std::string_view help, Counter which) {
        out.family(name, "counter", help);
        out.sample(name, "", tracker.value(which));
    };
    const auto labelled = [&](std::string_view name, std::string_view help, std::string_view label,
                              std::initializer_list<std::pair<std::string_view, Counter>> kinds) {
        out.family(name, "counter", help);
        for (const auto& [value, which] : kinds)
            out.sample(name, std::string(label) + "=\"" + std::string(value) + '"', tracker.value(which));
    };

    counter("zen_connections_accepted_total", "Connections admitted to a conversation.", Counter::accepted);
    labelled("zen_connections_refused_total", "Connections turned away, by reason.", "reason",
             {{"denied", Counter::refused_denied}, {"busy", Counter::refused_busy}, {"proxy", Counter::refused_proxy}});
    out.family("zen_connections_open", "gauge", "Conversations open now.");
    out.sample("zen_connections_open", "", static_cast<std::uint64_t>(std::max(0, tracker.active())));
    out.family("zen_connections_draining", "gauge", "Conversations open while the server stops.");
    out.sample("zen_connections_draining", "", static_cast<std::uint64_t>(std::max(0, tracker.draining())));
    counter("zen_answers_total", "Answers made.", Counter::answered);
    labelled("zen_errors_total", "Conversations ended by a protocol error, by kind.", "kind",
             {{"question_too_long", Counter::error_question_too_long},
              {"invalid_proxy_header", Counter::error_invalid_proxy_header}});
    labelled("zen_timeouts_total", "Connections closed by a timeout, by kind.", "kind",
             {{"idle", Counter::timeout_idle},
              {"question", Counter::timeout_question},
              {"send", Counter::timeout_send},
              {"proxy_header", Counter::timeout_proxy_header},
              {"drain", Counter::timeout_drain},
              {"keepalive", Counter::timeout_keepalive},
              {"unacknowledged", Counter::timeout_unacknowledged}});
    counter("zen_resets_total", "Conversations ended by an I/O error (reset, broken pipe).", Counter::resets);
    counter("zen_health_checks_total", "Connections closed or reset having sent nothing (a load balancer's check).",
            Counter::health_checks);
    counter("zen_received_bytes_total", "Bytes read from clients.", Counter::bytes_received);
    counter("zen_sent_bytes_total", "Bytes of answers handed to the kernel.", Counter::bytes_sent);
}

void answer_duration_family(Exposition& out, const ConnectionTracker& tracker) {
    const std::string_view histogram = "zen_answer_duration_seconds";
    out.family(histogram, "histogram",
               "The server's own time per answer: from the read that completed the question to the send that "
               "handed the answer's last byte to the kernel.");
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i < answer_buckets; ++i) {
        cumulative += tracker.answers_in_bucket(i);
        const std::string bound = i < answer_bucket_bounds_ns.size() ? seconds_text(answer_bucket_bounds_ns[i]) : "+Inf";
        out.sample("zen_answer_duration_seconds_bucket", "le=\"" + bound + '"', cumulative);
    }
    out.sample("zen_answer_duration_seconds_sum", "", static_cast<double>(tracker.answer_ns_sum()) / 1e9);
    out.sample("zen_answer_duration_seconds_count", "", cumulative);  // +Inf's, so the two always agree
}

void build_and_process_families(Exposition& out, const ProcessFacts& facts) {
    out.family("zen_build_info", "gauge", "Always 1: the labels say which zen this is.");
    out.sample("zen_build_info",
               "version=\"" + label_value(facts.version) + "\",commit=\"" + label_value(facts.commit) + "\",arch=\"" +
                   label_value(facts.arch) + '"',
               std::uint64_t{1});
    out.family("process_start_time_seconds", "gauge", "Start time of the process since the Unix epoch in seconds.");
    out.sample("process_start_time_seconds", "", facts.start_time_seconds);
    out.family("process_cpu_seconds_total", "counter", "User and system CPU time of the main process in seconds.");
    out.sample("process_cpu_seconds_total", "", facts.cpu_seconds);
    out.family("process_resident_memory_bytes", "gauge", "Resident memory of the main process in bytes.");
    out.sample("process_resident_memory_bytes", "", facts.resident_bytes);
    out.family("process_open_fds", "gauge", "Open file descriptors of the main process.");
    out.sample("process_open_fds", "", facts.open_fds);
    out.family("process_max_fds", "gauge", "The main process's limit of open file descriptors.");
    out.sample("process_max_fds", "", facts.max_fds);
}

}  // namespace

std::string render_exposition(const ConnectionTracker& tracker, const ProcessFacts& facts) {
    Exposition out;
    connection_families(out, tracker);
    answer_duration_family(out, tracker);
    build_and_process_families(out, facts);
    return out.take();
}

std::string http_response_bytes(const ScrapeResponse& response) {
    std::string reason;
    switch (response.status) {
        case 200: reason = "OK"; break;
        case 400: reason = "Bad Request"; break;
        case 404: reason = "Not Found"; break;
        case 405: reason = "Method Not Allowed"; break;
        case 431: reason = "Request Header Fields Too Large"; break;
        case 503: reason = "Service Unavailable"; break;
        default: reason = "Unknown"; break;
    }
    std::string bytes = "HTTP/1.1 " + std::to_string(response.status) + ' ' + reason + "\r\n";
    bytes += "Content-Type: " + response.content_type + "\r\n";
    bytes += "Content-Length: " + std::to_string(response.body.size()) + "\r\n";
    if (response.status == 405) bytes += "Allow: GET\r\n";
    bytes += "Connection: close\r\n\r\n";
    bytes += response.body;
    return bytes;
}

}  // namespace zen
