// A seeded simulation of zen's connection core (docs/simulation.md): from one seed, a server's
// rules and many clients, driven over one virtual clock and a TimerQueue the way an event-loop
// driver drives src/conn/Connection — random splits, pipelining, partial sends, EOFs and resets at
// any byte, clock jumps, a stop at any moment — with every step checked against the independent
// model of tests/sim/model.hpp. A failing seed prints the command that replays it.
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "conn/connection.hpp"
#include "conn/connection_tracker.hpp"
#include "loop/timer_queue.hpp"
#include "model.hpp"

#ifndef ZEN_SIM_REPLAY
#define ZEN_SIM_REPLAY "build/tests/sim/zen_simulation"
#endif

namespace sim {
namespace {

using namespace std::chrono_literals;
using Fate = zen::Connection::Fate;
using MFate = ModelConnection::Fate;

const TimePoint epoch = TimePoint{} + 1h;

struct Options {
    std::uint64_t first = 1;
    std::uint64_t last = 1;
    bool quiet = false;
    bool verbose = false;
    bool keep_going = false;  // on past a failing seed
    std::string replay = ZEN_SIM_REPLAY;
    std::vector<std::uint64_t> listed;  // --seed-file: these seeds instead of first..last
};

std::string ms_text(TimePoint t) {
    if (t == never) return "never";
    char text[48];
    std::snprintf(text, sizeof text, "+%.3f ms", std::chrono::duration<double, std::milli>(t - epoch).count());
    return text;
}

std::string shown(std::string_view bytes) { return python_bytes(bytes); }

const char* fate_name(Fate f) {
    switch (f) {
        case Fate::keep: return "keep";
        case Fate::linger: return "linger";
        case Fate::close: return "close";
        case Fate::drop: return "drop";
    }
    return "?";
}
const char* fate_name(MFate f) {
    switch (f) {
        case MFate::keep: return "keep";
        case MFate::linger: return "linger";
        case MFate::close: return "close";
        case MFate::drop: return "drop";
    }
    return "?";
}

zen::SocketAddress ipv4(const std::string& host, std::uint16_t port) {
    zen::SocketAddress address;
    address.storage.in4.sin_family = AF_INET;
    address.storage.in4.sin_port = htons(port);
    ::inet_pton(AF_INET, host.c_str(), &address.storage.in4.sin_addr);
    address.length = sizeof(sockaddr_in);
    return address;
}
std::string named(const std::string& host, std::uint16_t port) { return "('" + host + "', " + std::to_string(port) + ")"; }

zen::Cidr cidr(const char* text) {
    auto parsed = zen::Cidr::parse(text);
    return *parsed;
}

constexpr std::string_view v2_signature{"\r\n\r\n\0\r\nQUIT\n", 12};

// Where a PROXY reader must decide on bytes that are no header: at the first byte that cannot
// begin either signature (SIZE_MAX if every byte still could).
std::size_t undecided_until(std::string_view stream) {
    for (std::size_t i = 0; i < stream.size(); ++i) {
        const std::string_view head = stream.substr(0, i + 1);
        const bool v2 = v2_signature.substr(0, head.size()) == head.substr(0, std::min(head.size(), v2_signature.size()));
        const std::string_view v1 = "PROXY ";
        const bool v1_like = v1.substr(0, std::min(head.size(), v1.size())) == head.substr(0, std::min(head.size(), v1.size()));
        if (!v2 && !v1_like) return i + 1;
        if ((v2 && head.size() >= v2_signature.size()) || (v1_like && head.size() >= v1.size())) return SIZE_MAX;
    }
    return SIZE_MAX;
}

struct Client {
    std::size_t id = 0;
    std::string peer;
    zen::SocketAddress address;
    bool trusted = false;
    bool denied = false;
    HeaderPlan plan;
    std::string stream;             // every byte it will write
    std::vector<std::size_t> cuts;  // the ends of its writes
    std::size_t next_cut = 0;
    std::size_t written = 0;
    enum class End { eof, reset, stays } end = End::eof;
    std::size_t end_at = 0;  // bytes written before the EOF or the reset
    bool ended = false;
    int reader = 0;  // 0: takes all it is sent; 1: some; 2: nothing (until the end)
    std::string in_flight;
    bool eof_in_flight = false;
    bool eof_read = false;
    std::string got;
    bool accepted = false;
    bool gone = false;
    bool write_shut = false;
    TimePoint armed = never;
    std::unique_ptr<zen::Connection> zen;
    std::unique_ptr<ModelConnection> model;

    bool live() const { return accepted && !gone; }
};

class Simulation {
public:
    Simulation(std::uint64_t seed, const Options& options, zen::Log& log, const std::string& log_path,
               std::streamoff log_from)
        : seed_(seed), options_(options), random_(seed * 0x9E3779B97F4A7C15ull + 1), log_(log), log_path_(log_path),
          log_from_(log_from) {}

    // True when every step and the end agree with the model.
    bool run();
    std::streamoff log_end() const { return log_to_; }
    const std::string& failure() const { return failure_; }
    const zen::ConnectionTracker& tracker() const { return tracker_; }
    std::uint64_t steps() const { return step_; }

private:
    // Drawn straight from mt19937_64, whose output the standard fixes, and not through the
    // <random> distributions, whose algorithms each standard library chooses: a seed is the same
    // scenario with any compiler and library.
    std::uint64_t pick(std::uint64_t low, std::uint64_t high) {  // both included
        const std::uint64_t span = high - low + 1;
        return span == 0 ? random_() : low + random_() % span;
    }
    bool chance(double p) { return static_cast<double>(random_() >> 11) * 0x1.0p-53 < p; }
    Ms pick_ms(std::initializer_list<Ms> choices) {
        std::vector<Ms> all(choices);
        return all[pick(0, all.size() - 1)];
    }

    void make_rules();
    void make_clients();
    std::string make_questions(bool direct_under_proxy);
    std::string proxy_header(bool v2, const std::string& host, std::uint16_t port);

    void say(const std::string& what) {
        if (options_.verbose) std::cout << "  step " << step_ << " " << ms_text(now_) << ": " << what << "\n";
    }
    bool fail(const std::string& what);
    bool check(Client& c, const char* after);
    bool check_server(const char* after);
    void rearm(Client& c);
    bool expire();

    bool accept_next();
    bool client_writes(Client& c);
    bool client_ends(Client& c);
    bool driver_reads(Client& c);
    bool driver_sends(Client& c);
    bool advance();
    bool stop_server();
    bool finish();
    bool compare_log();

    Client* random_live(bool (Simulation::*eligible)(const Client&) const);
    bool can_write(const Client& c) const {
        return c.live() && !c.ended && c.written < c.stream.size() && (c.end == Client::End::stays || c.written < c.end_at);
    }
    bool can_end(const Client& c) const {
        return c.live() && !c.ended && c.end != Client::End::stays && c.written >= std::min(c.end_at, c.stream.size());
    }
    bool can_read(const Client& c) const { return c.live() && c.zen->wants_read(); }
    bool can_send(const Client& c) const { return c.live() && !c.write_shut && !c.zen->output().empty(); }

    std::uint64_t seed_;
    const Options& options_;
    std::mt19937_64 random_;
    zen::Log& log_;
    std::string log_path_;
    std::streamoff log_from_;
    std::streamoff log_to_ = 0;

    zen::ConnectionRules rules_;
    zen::LiveTable table_{zen::AphorismTable::book_defaults()};
    zen::ConnectionTracker tracker_{epoch};
    std::unique_ptr<zen::ConnectionContext> context_;
    ModelServer model_;
    zen::TimerQueue timers_;
    TimePoint now_ = epoch;
    std::vector<Client> clients_;
    std::size_t next_accept_ = 0;
    bool stopped_ = false;
    std::uint64_t step_ = 0;
    std::string failure_;
    std::string scenario_;
};

void Simulation::make_rules() {
    auto& limits = rules_.limits;
    limits.max_question = chance(0.3) ? 4096 : chance(0.6) ? pick(20, 60) : pick(1, 30);
    limits.max_pending = chance(0.3) ? 64 * 1024 : pick(1, 40);
    rules_.idle_timeout = chance(0.2) ? 0ms : pick_ms({1ms, 50ms, 300ms, 1000ms, 2500ms, 300'000ms, 300'000ms, 300'000ms});
    rules_.question_timeout = chance(0.3) ? 0ms : pick_ms({1ms, 40ms, 200ms, 1500ms, 30'000ms, 30'000ms});
    rules_.send_timeout = chance(0.3) ? 0ms : pick_ms({1ms, 30ms, 250ms, 1200ms, 60'000ms});
    rules_.wait = chance(0.65) ? 0ms : pick_ms({1ms, 7ms, 50ms, 400ms});
    rules_.max_connections = chance(0.5) ? 0 : static_cast<int>(pick(1, 4));
    if (chance(0.3)) {
        rules_.proxy.enabled = true;
        rules_.proxy.trusted.push_back(cidr("10.9.0.0/16"));
        rules_.proxy.header_timeout = chance(0.2) ? 0ms : pick_ms({1ms, 100ms, 900ms, 5000ms});
    }
    if (chance(0.3)) rules_.access.deny.push_back(cidr("192.0.2.0/24"));
    model_.rules = &rules_;
    context_ = std::make_unique<zen::ConnectionContext>(zen::ConnectionContext{rules_, table_, log_, tracker_});
    std::ostringstream text;
    text << "rules: max-question " << limits.max_question << ", max-pending " << limits.max_pending << ", idle "
         << rules_.idle_timeout.count() << " ms, question " << rules_.question_timeout.count() << " ms, send "
         << rules_.send_timeout.count() << " ms, wait " << rules_.wait.count() << " ms, max-connections "
         << rules_.max_connections << ", proxy " << (rules_.proxy.enabled ? "on" : "off") << " (header "
         << rules_.proxy.header_timeout.count() << " ms), deny " << (rules_.access.deny.empty() ? "none" : "192.0.2.0/24");
    scenario_ = text.str();
}

std::string Simulation::make_questions(bool direct_under_proxy) {
    const std::size_t q = rules_.limits.max_question;
    std::string out;
    const std::size_t items = pick(0, 8);
    for (std::size_t i = 0; i < items; ++i) {
        if (chance(0.4)) {
            for (std::uint64_t n = pick(0, 2); n > 0; --n) out += " \t\r\n"[pick(0, 3)];
        }
        switch (pick(0, 9)) {
            case 0: case 1: case 2: case 3:
                out += zen::book_aphorisms[pick(0, 2)].question;
                break;
            case 4: {  // unknown
                for (std::uint64_t n = pick(1, 12); n > 0; --n) out += static_cast<char>('a' + pick(0, 25));
                out += '?';
                break;
            }
            case 5: {  // exactly the limit, or one under it
                if (q > 5000) break;
                const std::size_t length = chance(0.5) ? q : std::max<std::size_t>(1, q - 1);
                out += std::string(length - 1, 'x');
                out += '?';
                break;
            }
            case 6: {  // too long: one byte over the limit, or a few, with its '?' or without
                if (!chance(0.5)) break;
                if (chance(0.5)) {
                    out += std::string(q + pick(0, 2), 'y') + '?';
                } else {
                    out += std::string(q + pick(1, 3), 'y');
                }
                break;
            }
            case 7: {  // any bytes
                for (std::uint64_t n = pick(1, 10); n > 0; --n) out += static_cast<char>(pick(0, 255));
                break;
            }
            case 8:
                out += " \r\n";
                break;
            default:
                out += "Beautiful is better";  // a question left open until the next item
                break;
        }
    }
    if (direct_under_proxy) {
        // A direct client's bytes are its questions: none starts a whole PROXY signature.
        if (out.rfind("PROXY ", 0) == 0 || out.rfind(std::string(v2_signature), 0) == 0) out[0] = 'B';
    }
    return out;
}

std::string Simulation::proxy_header(bool v2, const std::string& host, std::uint16_t port) {
    if (!v2) return "PROXY TCP4 " + host + " 10.0.0.1 " + std::to_string(port) + " 1060\r\n";
    std::string header(v2_signature);
    header += '\x21';  // version 2, PROXY
    header += '\x11';  // TCP over IPv4
    header += std::string("\x00\x0c", 2);
    in_addr source{};
    in_addr destination{};
    ::inet_pton(AF_INET, host.c_str(), &source);
    ::inet_pton(AF_INET, "10.0.0.1", &destination);
    header.append(reinterpret_cast<const char*>(&source), 4);
    header.append(reinterpret_cast<const char*>(&destination), 4);
    header += static_cast<char>(port >> 8);
    header += static_cast<char>(port & 0xff);
    header += static_cast<char>(1060 >> 8);
    header += static_cast<char>(1060 & 0xff);
    return header;
}

void Simulation::make_clients() {
    const std::size_t count = pick(1, 10);
    clients_.resize(count);
    for (std::size_t i = 0; i < count; ++i) {
        Client& c = clients_[i];
        c.id = i;
        const auto port = static_cast<std::uint16_t>(40000 + i);
        const bool proxy = rules_.proxy.enabled;
        std::string host;
        if (proxy && chance(0.5)) {
            host = "10.9.0." + std::to_string(pick(1, 9));
            c.trusted = true;
        } else if (!rules_.access.deny.empty() && chance(0.3)) {
            host = "192.0.2." + std::to_string(pick(1, 9));
            c.denied = true;
        } else {
            host = "127.0.0." + std::to_string(pick(1, 9));
        }
        c.peer = named(host, port);
        c.address = ipv4(host, port);
        if (!proxy) {
            c.stream = make_questions(false);
        } else if (c.trusted) {
            const std::uint64_t kind = pick(0, 9);
            if (kind < 7) {
                const bool denied_client = !rules_.access.deny.empty() && chance(0.3);
                const std::string client_host = (denied_client ? "192.0.2." : "198.51.100.") + std::to_string(pick(1, 9));
                const auto client_port = static_cast<std::uint16_t>(50000 + i);
                c.plan.kind = HeaderPlan::Kind::relayed;
                c.plan.client = named(client_host, client_port);
                c.plan.client_denied = denied_client;
                std::string header = proxy_header(chance(0.5), client_host, client_port);
                if (chance(0.15)) {
                    // A v2 LOCAL header (haproxy's health check) or a v1 UNKNOWN one: the
                    // connection keeps its own address (docs/deploy.md).
                    header = chance(0.5) ? std::string(v2_signature) + std::string("\x20\x00\x00\x00", 4)
                                         : std::string("PROXY UNKNOWN\r\n");
                    c.plan.client = c.peer;
                    c.plan.client_denied = false;
                }
                c.plan.header_length = c.plan.decided_at = header.size();
                c.stream = header + make_questions(false);
            } else if (kind == 7) {
                c.plan.kind = HeaderPlan::Kind::invalid;
                const std::string header = "PROXY TCP4 1.2.3.4 5.6.7.8 80\r\n";
                c.plan.decided_at = header.size();
                c.stream = header + make_questions(false);
            } else {
                c.plan.kind = HeaderPlan::Kind::missing;
                c.stream = make_questions(true);
                c.plan.decided_at = undecided_until(c.stream);
            }
        } else if (chance(0.15)) {
            c.plan.kind = HeaderPlan::Kind::forged;
            const std::string header = proxy_header(chance(0.5), "198.51.100.99", 50999);
            c.plan.decided_at = header.size();
            c.stream = header + make_questions(false);
        } else {
            c.plan.kind = HeaderPlan::Kind::direct;
            c.stream = make_questions(true);
            c.plan.decided_at = undecided_until(c.stream);
        }
        // Writes split at random bytes: one byte at a time, a few, or all at once.
        std::size_t at = 0;
        const int style = chance(0.1) ? 0 : static_cast<int>(pick(1, 3));
        while (at < c.stream.size()) {
            const std::size_t left = c.stream.size() - at;
            std::size_t n = style == 0 ? 1 : style == 3 ? left : pick(1, std::max<std::size_t>(1, std::min<std::size_t>(left, 30)));
            at += std::min(n, left);
            c.cuts.push_back(at);
        }
        const std::uint64_t end = pick(0, 9);
        c.end = end < 6 ? Client::End::eof : end < 8 ? Client::End::reset : Client::End::stays;
        c.end_at = chance(0.6) ? c.stream.size() : pick(0, c.stream.size());
        c.reader = chance(0.6) ? 0 : chance(0.6) ? 1 : 2;
    }
}

bool Simulation::fail(const std::string& what) {
    std::ostringstream text;
    text << "seed " << seed_ << " failed at step " << step_ << " (" << ms_text(now_) << "): " << what << "\n"
         << "  " << scenario_ << "\n"
         << "  replay: " << options_.replay << " --seed " << seed_ << " --verbose\n";
    failure_ = text.str();
    return false;
}

bool Simulation::check(Client& c, const char* after) {
    ModelConnection& m = *c.model;
    const std::string where = "connection " + std::to_string(c.id) + " " + c.peer + " after " + after + ": ";
    if (c.zen->fate() != Fate::keep || m.fate() != MFate::keep) {
        if (std::string(fate_name(c.zen->fate())) != fate_name(m.fate()))
            return fail(where + "fate: model " + fate_name(m.fate()) + ", zen " + fate_name(c.zen->fate()));
    }
    if (c.zen->output() != m.output())
        return fail(where + "output: model " + shown(m.output()) + ", zen " + shown(c.zen->output()));
    if (c.zen->wants_read() != m.wants_read())
        return fail(where + "wants_read: model " + std::to_string(m.wants_read()) + ", zen " + std::to_string(c.zen->wants_read()));
    if (c.zen->reads_without_waiting() != m.reads_without_waiting())
        return fail(where + "reads_without_waiting: model " + std::to_string(m.reads_without_waiting()) + ", zen " +
                    std::to_string(c.zen->reads_without_waiting()));
    if (c.zen->deadline() != m.deadline())
        return fail(where + "deadline: model " + ms_text(m.deadline()) + ", zen " + ms_text(c.zen->deadline()));
    if (c.zen->stopping() != m.stopping()) return fail(where + "stopping differs");
    const Fate fate = c.zen->fate();
    if (std::string_view(after) == "tick" && fate != Fate::close && fate != Fate::drop && c.zen->deadline() <= now_)
        return fail(where + "the deadline " + ms_text(c.zen->deadline()) + " has not moved past the tick");
    if (fate == Fate::linger || fate == Fate::close) {
        // Every answer owed has been handed over before a graceful end.
        if (!m.all_delivered())
            return fail(where + "ends (" + fate_name(fate) + ") with " + std::to_string(m.expected_stream().size() - m.delivered()) +
                        " answer bytes never sent");
    }
    if (fate == Fate::linger && !c.write_shut) {
        c.write_shut = true;
        say("c" + std::to_string(c.id) + " lingers until " + ms_text(c.zen->deadline()));
    }
    if (fate == Fate::close || fate == Fate::drop) {
        say("c" + std::to_string(c.id) + " " + fate_name(fate));
        c.zen.reset();
        c.model->closed();
        c.gone = true;
        return check_server(after);
    }
    rearm(c);
    return check_server(after);
}

bool Simulation::check_server(const char* after) {
    if (tracker_.active() != model_.active)
        return fail(std::string("after ") + after + ": open connections: model " + std::to_string(model_.active) + ", zen " +
                    std::to_string(tracker_.active()));
    if (tracker_.draining() != model_.draining)
        return fail(std::string("after ") + after + ": draining connections: model " + std::to_string(model_.draining) +
                    ", zen " + std::to_string(tracker_.draining()));
    for (std::size_t i = 0; i < zen::counter_kinds; ++i) {
        const std::uint64_t got = tracker_.value(static_cast<zen::Counter>(i));
        if (got != model_.counters[i])
            return fail(std::string("after ") + after + ": counter " + std::string(zen::counter_names[i]) + ": model " +
                        std::to_string(model_.counters[i]) + ", zen " + std::to_string(got));
    }
    return true;
}

// As an event loop does: arm the timer queue whenever a connection's deadline moves.
void Simulation::rearm(Client& c) {
    const TimePoint d = c.zen->deadline();
    if (d != never && d != c.armed) {
        timers_.arm(d, c.id);
        c.armed = d;
    }
}

bool Simulation::expire() {
    bool ok = true;
    timers_.expire(now_, [&](TimePoint when, std::uint64_t token) {
        if (!ok) return;
        Client& c = clients_[token];
        if (!c.live()) return;
        if (when == c.armed) c.armed = never;
        if (c.zen->deadline() > now_) {
            rearm(c);
            return;
        }
        // Built in steps: GCC 12 misreads "c" + to_string(...) + "..." here as an overlapping memcpy (-Wrestrict, GCC bug 105329).
        std::string step = "c";
        step += std::to_string(c.id);
        step += " tick";
        say(step);
        c.zen->tick(now_);
        c.model->tick(now_);
        ok = check(c, "tick");
    });
    if (ok) {
        timers_.drop_stale(clients_.size(), [&](std::uint64_t token) { return !clients_[token].live(); });
    }
    return ok;
}

bool Simulation::accept_next() {
    Client& c = clients_[next_accept_++];
    c.accepted = true;
    say("c" + std::to_string(c.id) + " accepted from " + c.peer + " (" + std::to_string(c.stream.size()) +
        " bytes to write: " + shown(c.stream) + ")");
    c.model = std::make_unique<ModelConnection>(model_, c.peer, c.trusted, c.denied, c.plan, now_);
    c.zen = std::make_unique<zen::Connection>(*context_, c.address, now_);
    return check(c, "accept");
}

bool Simulation::client_writes(Client& c) {
    std::size_t end = c.cuts[c.next_cut++];
    if (c.end != Client::End::stays) end = std::min(end, std::max(c.end_at, c.written));
    if (end <= c.written) return true;
    c.in_flight += c.stream.substr(c.written, end - c.written);
    say("c" + std::to_string(c.id) + " writes " + shown(c.stream.substr(c.written, end - c.written)));
    c.written = end;
    while (c.next_cut < c.cuts.size() && c.cuts[c.next_cut] <= c.written) ++c.next_cut;
    return true;
}

bool Simulation::client_ends(Client& c) {
    c.ended = true;
    if (c.end == Client::End::eof) {
        say("c" + std::to_string(c.id) + " shuts down writing (EOF after " + std::to_string(c.written) + " bytes)");
        c.eof_in_flight = true;
        return true;
    }
    // A reset: the driver's next read or send fails; what was in flight is lost.
    say("c" + std::to_string(c.id) + " resets");
    c.in_flight.clear();
    static constexpr std::string_view reset = "[Errno 104] Connection reset by peer";
    c.zen->failed(reset, now_);
    c.model->failed(reset, now_);
    return check(c, "reset");
}

bool Simulation::driver_reads(Client& c) {
    if (!c.in_flight.empty()) {
        const std::size_t n = pick(1, c.in_flight.size());
        const std::string bytes = c.in_flight.substr(0, n);
        c.in_flight.erase(0, n);
        const bool unframed = bytes.find('?') == std::string::npos && chance(0.3);
        say("c" + std::to_string(c.id) + (unframed ? " read unframed " : " read ") + shown(bytes));
        if (unframed) {
            c.zen->received_unframed(bytes, now_);
        } else {
            c.zen->received(bytes, now_);
        }
        c.model->received(bytes, now_);
        return check(c, "read");
    }
    if (c.eof_in_flight && !c.eof_read) {
        c.eof_read = true;
        say("c" + std::to_string(c.id) + " read EOF");
        c.zen->received_eof(now_);
        c.model->received_eof(now_);
        return check(c, "EOF");
    }
    if (c.zen->reads_without_waiting()) {
        say("c" + std::to_string(c.id) + " nothing to read");
        c.zen->nothing_to_read(now_);
        c.model->nothing_to_read(now_);
        return check(c, "nothing to read");
    }
    return true;
}

bool Simulation::driver_sends(Client& c) {
    const std::string_view out = c.zen->output();
    std::size_t n = out.size();
    if (c.reader == 1) n = pick(0, out.size());
    if (c.reader == 2) n = 0;
    if (n == 0) return true;  // the socket's buffer is full: try later
    const std::string taken(out.substr(0, n));
    say("c" + std::to_string(c.id) + " sent " + shown(taken));
    const std::string_view owed = c.model->expected_stream();
    if (owed.compare(c.got.size(), n, taken) != 0)
        return fail("connection " + std::to_string(c.id) + ": sent " + shown(taken) + " where the model owes " +
                    shown(owed.substr(std::min(owed.size(), c.got.size()), n)));
    c.got += taken;
    c.zen->sent(n, now_);
    c.model->sent(n, now_);
    return check(c, "send");
}

bool Simulation::advance() {
    if (!expire()) return false;
    const TimePoint next = timers_.next();
    const std::uint64_t how = pick(0, 19);
    TimePoint to = now_;
    if (how < 8) {
        to = now_ + std::chrono::milliseconds(pick(1, 30));
    } else if (how < 13 && next != never) {
        to = std::max(now_, next);
    } else if (how < 15 && next != never) {
        to = std::max(now_, next - 1ms);
    } else if (how < 17) {
        to = now_ + std::chrono::milliseconds(pick(100, 2000));
    } else if (how < 18) {
        to = now_ + std::chrono::seconds(pick(2, 7200));  // the clock jumps far ahead
    } else {
        to = now_ + std::chrono::microseconds(pick(1, 999));
    }
    say("clock to " + ms_text(to));
    now_ = to;
    return expire();
}

bool Simulation::stop_server() {
    stopped_ = true;
    const TimePoint drain = now_ + (chance(0.15) ? 0ms : std::chrono::milliseconds(pick(1, 3000)));
    say("server stops, drain deadline " + ms_text(drain));
    for (Client& c : clients_) {
        if (!c.live()) continue;
        c.zen->stop(now_, drain);
        c.model->stop(now_, drain);
        if (!check(c, "stop")) return false;
    }
    return true;
}

Client* Simulation::random_live(bool (Simulation::*eligible)(const Client&) const) {
    std::vector<Client*> some;
    for (Client& c : clients_)
        if ((this->*eligible)(c)) some.push_back(&c);
    if (some.empty()) return nullptr;
    return some[pick(0, some.size() - 1)];
}

// The end: every client takes its answers, the server stops (if it has not), and time runs on
// until every connection has ended, as the drain guarantees.
bool Simulation::finish() {
    for (Client& c : clients_) c.reader = 0;
    if (!stopped_ && !stop_server()) return false;
    for (int round = 0; round < 100000; ++round) {
        bool any = false;
        bool moved = false;
        for (Client& c : clients_) {
            if (!c.live()) continue;
            any = true;
            if (can_send(c)) {
                ++step_;
                if (!driver_sends(c)) return false;
                moved = true;
            }
            if (can_read(c)) {
                ++step_;
                const bool had = !c.in_flight.empty() || (c.eof_in_flight && !c.eof_read) || c.zen->reads_without_waiting();
                if (!driver_reads(c)) return false;
                moved = moved || had;
            }
        }
        if (!any) return true;
        ++step_;
        if (!expire()) return false;
        if (moved) continue;
        const TimePoint next = timers_.next();
        if (next == never) return fail("connections remain open with no deadline after the stop");
        now_ = std::max(now_, next);
        say("clock to " + ms_text(now_));
        if (!expire()) return false;
    }
    return fail("the connections did not end after the stop");
}

bool Simulation::compare_log() {
    std::ifstream in(log_path_, std::ios::binary);
    in.seekg(log_from_);
    std::vector<std::string> lines;
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
    in.clear();
    in.seekg(0, std::ios::end);
    log_to_ = in.tellg();
    const auto& expected = model_.log;
    for (std::size_t i = 0; i < std::max(lines.size(), expected.size()); ++i) {
        const std::string got = i < lines.size() ? lines[i] : "(no line)";
        if (i >= expected.size()) return fail("log line " + std::to_string(i + 1) + ": model none, zen \"" + got + "\"");
        const ExpectedLine& want = expected[i];
        const bool same = want.prefix ? got.rfind(want.text, 0) == 0 : got == want.text;
        if (!same) {
            step_ = want.step;
            return fail("log line " + std::to_string(i + 1) + ": model \"" + want.text + (want.prefix ? "...\"" : "\"") +
                        ", zen \"" + got + "\"");
        }
    }
    return true;
}

bool Simulation::run() {
    make_rules();
    make_clients();
    if (options_.verbose) std::cout << "seed " << seed_ << ": " << scenario_ << "\n";
    const std::uint64_t budget = pick(20, 600);
    bool ok = true;
    while (ok && step_ < budget) {
        ++step_;
        model_.step = step_;
        const std::uint64_t what = pick(0, 29);
        if (what < 3) {
            if (!stopped_ && next_accept_ < clients_.size()) ok = accept_next();
        } else if (what < 9) {
            if (Client* c = random_live(&Simulation::can_write)) ok = client_writes(*c);
        } else if (what < 11) {
            if (Client* c = random_live(&Simulation::can_end)) ok = client_ends(*c);
        } else if (what < 17) {
            if (Client* c = random_live(&Simulation::can_read)) ok = driver_reads(*c);
        } else if (what < 23) {
            if (Client* c = random_live(&Simulation::can_send)) ok = driver_sends(*c);
        } else if (what < 26) {
            ok = advance();
        } else if (what < 28) {
            if (!stopped_ && chance(0.1)) ok = stop_server();
        } else {
            ok = expire();
        }
    }
    model_.step = step_;
    if (ok) ok = finish();
    if (!ok) {
        // The log of a failed run is not compared, but its end is where the next seed begins.
        std::ifstream in(log_path_, std::ios::binary | std::ios::ate);
        log_to_ = in.tellg();
        return false;
    }
    if (!compare_log()) return false;
    if (tracker_.active() != 0 || tracker_.draining() != 0) return fail("connections still counted open at the end");
    // The answer-time histogram: every answer sent whole is timed, none twice, and under --wait
    // none took less than the wait.
    std::uint64_t timed = 0;
    for (std::size_t i = 0; i < zen::answer_buckets; ++i) timed += tracker_.answers_in_bucket(i);
    const std::uint64_t answered = tracker_.value(zen::Counter::answered);
    if (timed < model_.timed_at_least || timed > answered)
        return fail("answer-time histogram holds " + std::to_string(timed) + " answers: model at least " +
                    std::to_string(model_.timed_at_least) + " and at most " + std::to_string(answered));
    const auto wait_ns = static_cast<std::uint64_t>(std::chrono::nanoseconds(rules_.wait).count());
    if (tracker_.answer_ns_sum() < timed * wait_ns)
        return fail("answer-time histogram: " + std::to_string(timed) + " answers took " +
                    std::to_string(tracker_.answer_ns_sum()) + " ns in all, under --wait " + limit_words(rules_.wait) + " each");
    return check_server("the end");
}

void usage(std::ostream& out) {
    out << "usage: zen_simulation [--seed N | --seeds FIRST..LAST | --count K] [--seed-file FILE]\n"
           "                      [--quiet] [--verbose] [--keep-going] [--replay TEXT]\n"
           "  Simulates zen's connection core (src/conn) from each seed and checks every step against\n"
           "  an independent model of the protocol and the connection rules (docs/simulation.md).\n"
           "  --seed N           one seed (without a seed option: seed 1)\n"
           "  --seeds A..B       seeds A to B, both included\n"
           "  --count K          seeds 1 to K\n"
           "  --quiet            print only failures\n"
           "  --verbose          print every step of the scenario\n"
           "  --seed-file FILE   the seeds of FILE (one a line: SEED, then why; '#' starts a comment)\n"
           "  --keep-going       run every seed, printing each failure (exit 1 if any)\n"
           "  --replay TEXT      the command a failure prints to replay itself (for mutant builds)\n"
           "Exit status: 0 if every seed agrees with the model, 1 at the first seed that does not, 2 on usage errors.\n";
}

bool parse_number(const std::string& text, std::uint64_t& value) {
    if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos) return false;
    value = std::stoull(text);
    return true;
}

}  // namespace
}  // namespace sim

// The whole program; tests/sim/main.cpp calls it (mutant builds link their own copy of one
// zen source ahead of the libraries, and this).
int zen_simulation_main(int argc, char** argv) {
    sim::Options options;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::cerr << "zen_simulation: " << arg << " needs a value\n";
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--help" || arg == "-h") {
            sim::usage(std::cout);
            return 0;
        } else if (arg == "--seed") {
            if (!sim::parse_number(value(), options.first)) return sim::usage(std::cerr), 2;
            options.last = options.first;
        } else if (arg == "--seeds") {
            const std::string range = value();
            const std::size_t dots = range.find("..");
            if (dots == std::string::npos || !sim::parse_number(range.substr(0, dots), options.first) ||
                !sim::parse_number(range.substr(dots + 2), options.last) || options.last < options.first)
                return sim::usage(std::cerr), 2;
        } else if (arg == "--count") {
            std::uint64_t count = 0;
            if (!sim::parse_number(value(), count) || count == 0) return sim::usage(std::cerr), 2;
            options.first = 1;
            options.last = count;
        } else if (arg == "--quiet") {
            options.quiet = true;
        } else if (arg == "--verbose") {
            options.verbose = true;
        } else if (arg == "--seed-file") {
            const std::string file = value();
            std::ifstream in(file);
            if (!in) {
                std::cerr << "zen_simulation: cannot read " << file << "\n";
                return 2;
            }
            std::string line;
            while (std::getline(in, line)) {
                line = line.substr(0, line.find('#'));
                std::istringstream words(line);
                std::string first;
                if (!(words >> first)) continue;
                std::uint64_t seed = 0;
                if (!sim::parse_number(first, seed)) {
                    std::cerr << "zen_simulation: " << file << ": not a seed: " << first << "\n";
                    return 2;
                }
                options.listed.push_back(seed);
            }
            if (options.listed.empty()) {
                std::cerr << "zen_simulation: " << file << " lists no seed\n";
                return 2;
            }
        } else if (arg == "--keep-going") {
            options.keep_going = true;
        } else if (arg == "--replay") {
            options.replay = value();
        } else {
            std::cerr << "zen_simulation: unknown option " << arg << "\n";
            sim::usage(std::cerr);
            return 2;
        }
    }
    // The log every seed writes to, read back after each: in TMPDIR, removed at the end.
    const char* tmpdir = std::getenv("TMPDIR");
    std::string log_template = std::string(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp") + "/zen-simulation-log-XXXXXX";
    std::vector<char> path_buffer(log_template.begin(), log_template.end());
    path_buffer.push_back('\0');
    char* path = path_buffer.data();
    const int fd = ::mkstemp(path);
    if (fd < 0) {
        std::perror("zen_simulation: mkstemp");
        return 2;
    }
    ::close(fd);
    int status = 0;
    std::uint64_t steps = 0;
    std::uint64_t seeds = 0;
    std::uint64_t failed = 0;
    std::array<std::uint64_t, zen::counter_kinds> totals{};
    {
        zen::Log log(zen::LogOptions{.file = path});
        std::streamoff offset = 0;
        // One seed; false to stop.
        const auto run_one = [&](std::uint64_t seed) {
            sim::Simulation simulation(seed, options, log, path, offset);
            const bool ok = simulation.run();
            offset = simulation.log_end();
            steps += simulation.steps();
            ++seeds;
            for (std::size_t i = 0; i < zen::counter_kinds; ++i)
                totals[i] += simulation.tracker().value(static_cast<zen::Counter>(i));
            if (ok) {
                if (options.verbose) std::cout << "seed " << seed << ": agrees with the model\n";
                return true;
            }
            std::cout << "zen_simulation: " << simulation.failure();
            status = 1;
            ++failed;
            return options.keep_going;
        };
        if (!options.listed.empty()) {
            for (const std::uint64_t seed : options.listed)
                if (!run_one(seed)) break;
        } else {
            for (std::uint64_t seed = options.first; run_one(seed) && seed != options.last; ++seed) {
            }
        }
    }
    std::remove(path);
    if (!options.quiet || status != 0) {
        std::cout << "zen_simulation: " << seeds << " seed(s), " << steps << " steps, "
                  << (status == 0 ? "all agree with the model" : std::to_string(failed) + " failed") << "\n";
        // What the seeds made the connections do, summed over every seed.
        std::cout << "counted:";
        for (std::size_t i = 0; i < zen::counter_kinds; ++i) std::cout << " " << zen::counter_names[i] << "=" << totals[i];
        std::cout << "\n";
    }
    return status;
}
