#include "metrics/endpoint.hpp"

#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <cstdio>
#include <vector>

#include "base/build_info.hpp"
#include "metrics/exposition.hpp"
#include "net/io.hpp"
#include "net/readiness.hpp"

namespace zen {

namespace {

// Held by the endpoint's thread whenever it is not asleep in poll(), and by fork() (through
// pthread_atfork) around the fork: a child is never born while that thread holds a lock of the
// allocator or the stdio.
std::mutex fork_mutex;
// The sockets a child must close at once: it does not serve scrapers, and a copy of a
// scraper's socket would keep that connection open after the endpoint closed it. Changed only
// with fork_mutex held; a fixed array, as the child may not allocate.
std::array<int, max_scrapers + 2> open_fds;  // the listener, the wake event, the scrapers
std::size_t open_fd_count = 0;

void remember_fd(int fd) {
    if (open_fd_count < open_fds.size()) open_fds[open_fd_count++] = fd;
}
void forget_fd(int fd) {
    const auto end = open_fds.begin() + static_cast<std::ptrdiff_t>(open_fd_count);
    if (const auto found = std::find(open_fds.begin(), end, fd); found != end) {
        *found = open_fds[--open_fd_count];
    }
}

void install_fork_guard() {
    static const bool installed = [] {
        ::pthread_atfork([] { fork_mutex.lock(); }, [] { fork_mutex.unlock(); },
                         [] {
                             for (std::size_t i = 0; i < open_fd_count; ++i) ::close(open_fds[i]);
                             open_fd_count = 0;
                             fork_mutex.unlock();
                         });
        return true;
    }();
    (void)installed;
}

double wall_seconds() {
    return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// The client address a per-address count compares: IPv4 as IPv4-mapped IPv6, so a dual-stack
// listener's IPv4 clients and a plain IPv4 listener's count alike.
using AddressKey = std::array<unsigned char, 16>;
AddressKey address_key(const SocketAddress& address) {
    AddressKey key{};
    if (address.family() == AF_INET6) {
        std::memcpy(key.data(), &address.storage.in6.sin6_addr, key.size());
    } else if (address.family() == AF_INET) {
        key[10] = key[11] = 0xff;
        std::memcpy(key.data() + 12, &address.storage.in4.sin_addr, 4);
    }
    return key;
}

// One address's allowance of new connections: a token bucket.
struct AddressRate {
    AddressKey address{};
    double tokens = scraper_burst;
    TimePoint updated;
};

struct Scraper {
    Fd fd;
    AddressKey address{};
    TimePoint accepted;
    std::uint64_t batch = 0;  // which accept round brought it
    TimePoint deadline;
    RequestHeadParser parser;
    std::string request;
    std::string response;  // empty until the request is read
    std::size_t response_sent = 0;
    bool responded = false;
    bool finished = false;  // the response is out and our side shut down: waiting for the client's EOF
    bool over = false;
};

int count_open_fds() {
    int count = 0;
    if (DIR* dir = ::opendir("/proc/self/fd")) {
        while (const dirent* entry = ::readdir(dir)) {
            if (entry->d_name[0] != '.') ++count;
        }
        ::closedir(dir);
        --count;  // the directory's own
    }
    return count;
}

double resident_bytes() {
    long pages = 0;
    if (FILE* statm = std::fopen("/proc/self/statm", "r")) {
        long size = 0;
        if (std::fscanf(statm, "%ld %ld", &size, &pages) != 2) pages = 0;
        std::fclose(statm);
    }
    return static_cast<double>(pages) * static_cast<double>(::sysconf(_SC_PAGESIZE));
}

}  // namespace

Result<HostPort> parse_host_port(std::string_view text) {
    const std::size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return Error{"--metrics '" + std::string(text) + "' needs HOST:PORT"};
    std::string_view host = text.substr(0, colon);
    const std::string_view port_text = text.substr(colon + 1);
    if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
    unsigned port = 0;
    const auto [end, error] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (port_text.empty() || error != std::errc() || end != port_text.data() + port_text.size() || port > 65535)
        return Error{"--metrics '" + std::string(text) + "': the port must be a number from 0 to 65535"};
    return HostPort{std::string(host), static_cast<std::uint16_t>(port)};
}

namespace {

bool is_token_char(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    return c != 0 && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

}  // namespace

RequestHeadParser::Verdict RequestHeadParser::feed(std::string_view head) {
    while (consumed_ < head.size() && state_ != State::complete && state_ != State::malformed) {
        state_ = step(static_cast<unsigned char>(head[consumed_]), consumed_);
        ++consumed_;
    }
    if (state_ == State::complete) return Verdict::complete;
    if (state_ == State::malformed) return Verdict::malformed;
    return Verdict::incomplete;
}

RequestHeadParser::State RequestHeadParser::step(unsigned char c, std::size_t at) {
    constexpr std::string_view version = "HTTP/1.";
    switch (state_) {
        case State::method:
            if (is_token_char(c)) return State::method;
            if (c == ' ' && at > 0) {
                method_end_ = at;
                return State::target_start;
            }
            return State::malformed;
        case State::target_start:
            if (c != '/') return State::malformed;
            target_begin_ = at;
            return State::target;
        case State::target:
            if (c > 0x20 && c < 0x7f) return State::target;
            if (c != ' ') return State::malformed;  // a CR or LF here: HTTP/0.9, no version
            target_end_ = at;
            return State::version;
        case State::version:
            if (c != static_cast<unsigned char>(version[version_matched_])) return State::malformed;
            return ++version_matched_ == version.size() ? State::version_digit : State::version;
        case State::version_digit: return c >= '0' && c <= '9' ? State::line_end : State::malformed;
        case State::line_end:
            if (c == '\r') return State::line_lf;
            return c == '\n' ? State::header_start : State::malformed;
        case State::line_lf:
        case State::header_lf: return c == '\n' ? State::header_start : State::malformed;
        case State::header_start:
            if (c == '\r') return State::final_lf;
            if (c == '\n') return State::complete;
            return is_token_char(c) ? State::header_name : State::malformed;  // a space: folding
        case State::header_name:
            if (is_token_char(c)) return State::header_name;
            return c == ':' ? State::header_value : State::malformed;
        case State::header_value:
            if (c == '\t' || (c >= 0x20 && c != 0x7f)) return State::header_value;
            if (c == '\r') return State::header_lf;
            return c == '\n' ? State::header_start : State::malformed;
        case State::final_lf: return c == '\n' ? State::complete : State::malformed;
        case State::complete:
        case State::malformed: return state_;
    }
    return State::malformed;
}

ScrapeRequest RequestHeadParser::request(std::string_view head) const {
    ScrapeRequest request;
    if (state_ == State::malformed) request.status = ScrapeRequest::Status::malformed;
    if (state_ != State::complete) return request;
    request.status = ScrapeRequest::Status::complete;
    request.method = head.substr(0, method_end_);
    std::string_view target = head.substr(target_begin_, target_end_ - target_begin_);
    if (const std::size_t query = target.find('?'); query != std::string_view::npos) target = target.substr(0, query);
    request.path = target;
    return request;
}

Result<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::open(std::string_view host_port, std::string arch) {
    auto address = parse_host_port(host_port);
    if (!address) return Error{address.error()};
    if (auto resolved = resolve(address->host, address->port, true); !resolved)
        return Error{"--metrics: " + resolved.error()};
    auto listener = open_listener(address->host, address->port, 16);
    if (!listener) return Error{"--metrics: " + listener.error()};
    return std::unique_ptr<MetricsEndpoint>(new MetricsEndpoint(std::move(listener).value(), std::move(arch)));
}

MetricsEndpoint::MetricsEndpoint(Listener listener, std::string arch)
    : listener_(std::move(listener)), arch_(std::move(arch)), start_time_seconds_(wall_seconds()) {}

MetricsEndpoint::~MetricsEndpoint() {
    if (!thread_.joinable()) return;
    const std::uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(wake_.get(), &one, sizeof one);
    thread_.join();
}

void MetricsEndpoint::start(const ConnectionTracker& tracker) {
    install_fork_guard();
    const std::lock_guard lock(fork_mutex);  // the thread waits for it: no fork() while it starts
    wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    remember_fd(wake_.get());
    remember_fd(listener_.fd.get());
    thread_ = std::thread([this, &tracker] {
        started_.store(true);
        started_.notify_one();
        serve(tracker);
    });
    started_.wait(false);
}

std::string MetricsEndpoint::render(const ConnectionTracker& tracker) const {
    rusage usage{};
    ::getrusage(RUSAGE_SELF, &usage);
    const auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
    rlimit files{};
    ::getrlimit(RLIMIT_NOFILE, &files);
    const ProcessFacts facts{
        .version = zen_version(),
        .commit = zen_commit(),
        .arch = arch_,
        .start_time_seconds = start_time_seconds_,
        .cpu_seconds = seconds(usage.ru_utime) + seconds(usage.ru_stime),
        .resident_bytes = resident_bytes(),
        .open_fds = static_cast<double>(count_open_fds()),
        .max_fds = static_cast<double>(files.rlim_cur),
    };
    return render_exposition(tracker, facts);
}

// serve()'s scrapers and poll set, on the endpoint's thread; every method but poll() runs with
// fork_mutex held.
class MetricsEndpoint::ScrapeLoop {
public:
    ScrapeLoop(MetricsEndpoint& endpoint, const ConnectionTracker& tracker) : endpoint_(endpoint), tracker_(tracker) {
        scrapers_.reserve(max_scrapers);
    }

    // Fills the poll set: the wake event, the listener, then each scraper in order; the timeout
    // (ms, -1 for none) is the nearest scraper's deadline.
    int poll_set() {
        polled_.clear();
        polled_.push_back({endpoint_.wake_.get(), POLLIN, 0});
        polled_.push_back({endpoint_.listener_.fd.get(), POLLIN, 0});
        TimePoint next = never;
        for (const Scraper& scraper : scrapers_) {
            const bool sending = scraper.responded && !scraper.finished;
            polled_.push_back({scraper.fd.get(), static_cast<short>(sending ? POLLOUT : POLLIN), 0});
            next = std::min(next, scraper.deadline);
        }
        if (next == never) return -1;
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(next - Clock::now()).count();
        return static_cast<int>(std::clamp<long long>(left, 0, 60'000));
    }
    int poll(int timeout_ms) { return ::poll(polled_.data(), polled_.size(), timeout_ms); }
    bool woken() const { return (polled_[0].revents & POLLIN) != 0; }

    // What poll() found ready: the scrapers first, so one whose request has come is answered
    // before any newcomer may take its slot; then the newcomers; then the scrapers done with go.
    void serve_ready(TimePoint now) {
        for (std::size_t i = 0; i < scrapers_.size(); ++i) serve_scraper(scrapers_[i], polled_[i + 2].revents, now);
        std::erase_if(scrapers_, [](const Scraper& scraper) { return scraper.over; });
        if ((polled_[1].revents & POLLIN) != 0) accept_scrapers(now);
        std::erase_if(scrapers_, [](const Scraper& scraper) { return scraper.over; });
    }

    void close_all() {
        for (Scraper& scraper : scrapers_) close_scraper(scraper);
    }

private:
    void accept_scrapers(TimePoint now) {
        ++batch_;
        for (int accepted = 0; accepted < 16; ++accepted) {
            AcceptOutcome outcome = accept_client(endpoint_.listener_);
            if (outcome.status == AcceptStatus::accepted) {
                const AddressKey address = address_key(outcome.client.peer);
                if (!admit(address, now)) continue;  // over its address's rate: closed at once
                if (!make_room(address)) continue;   // every slot busy answering: closed at once
                remember_fd(outcome.client.fd.get());
                Scraper& scraper = scrapers_.emplace_back();
                scraper.fd = std::move(outcome.client.fd);
                scraper.address = address;
                scraper.accepted = now;
                scraper.batch = batch_;
                scraper.deadline = now + request_head_timeout;
                read_request(scraper);  // a scraper sends at once: often its request is here already
                continue;
            }
            if (outcome.status != AcceptStatus::client_gone) break;
        }
    }

    // Whether `address` may open a connection: it has a token left. A token is spent only by
    // a connection that ends without a complete request (cut by a deadline, evicted, or gone),
    // so a scraper never spends any. The table keeps at most 256 addresses: one whose bucket is
    // full again says nothing and makes room first.
    AddressRate* rate_of(const AddressKey& address, TimePoint now, bool create) {
        const auto refill = [&](AddressRate& rate) {
            const double seconds = std::chrono::duration<double>(now - rate.updated).count();
            rate.tokens = std::min(scraper_burst, rate.tokens + seconds * scraper_rate_per_second);
            rate.updated = now;
        };
        auto found = std::find_if(rates_.begin(), rates_.end(), [&](const AddressRate& rate) { return rate.address == address; });
        if (found == rates_.end()) {
            if (!create) return nullptr;
            if (rates_.size() >= 256) {
                for (AddressRate& rate : rates_) refill(rate);
                std::erase_if(rates_, [](const AddressRate& rate) { return rate.tokens >= scraper_burst; });
                if (rates_.size() >= 256) return nullptr;  // that many wasteful addresses: the slots' rules alone
            }
            found = rates_.insert(rates_.end(), AddressRate{address, scraper_burst, now});
        }
        refill(*found);
        return &*found;
    }
    bool admit(const AddressKey& address, TimePoint now) {
        const AddressRate* rate = rate_of(address, now, false);
        return rate == nullptr || rate->tokens >= 1;
    }
    void charge(const AddressKey& address, TimePoint now) {
        if (AddressRate* rate = rate_of(address, now, true)) rate->tokens = std::max(0.0, rate->tokens - 1);
    }

    // A slot for a newcomer from `address`, under both limits: false if there is none. Past a
    // limit, the connection that makes room is, among those the limit counts, one that has no
    // complete request yet (the one waiting longest), else one already answered and waiting
    // for its client to close (the oldest); never one still being answered, nor one accepted in
    // this same round (its request has had no chance to arrive). So a storm of connections that
    // never finish a request only ever evicts its own kind, and a real scraper, whose request
    // comes with its connection, is answered.
    bool make_room(const AddressKey& address) {
        const auto live = [](const Scraper& scraper) { return !scraper.over; };
        const auto from_address = [&](const Scraper& scraper) { return live(scraper) && scraper.address == address; };
        if (static_cast<std::size_t>(std::count_if(scrapers_.begin(), scrapers_.end(), from_address)) >=
            max_scrapers_per_address) {
            if (!evict_one(from_address)) return false;
        }
        if (static_cast<std::size_t>(std::count_if(scrapers_.begin(), scrapers_.end(), live)) >= max_scrapers) {
            if (!evict_one(live)) return false;
        }
        // Slots of closed scrapers are reused only after erase: make sure one is free.
        std::erase_if(scrapers_, [](const Scraper& scraper) { return scraper.over; });
        return scrapers_.size() < max_scrapers;
    }

    template <typename Counted>
    bool evict_one(Counted counted) {
        Scraper* chosen = nullptr;
        const auto rank = [](const Scraper& scraper) { return scraper.responded ? 1 : 0; };  // waiting ones first
        for (Scraper& scraper : scrapers_) {
            if (!counted(scraper) || scraper.batch == batch_) continue;
            if (scraper.responded && !scraper.finished) continue;  // its response is still going out
            if (chosen == nullptr || rank(scraper) < rank(*chosen) ||
                (rank(scraper) == rank(*chosen) && scraper.accepted < chosen->accepted)) {
                chosen = &scraper;
            }
        }
        if (chosen == nullptr) return false;
        close_scraper(*chosen);
        return true;
    }

    void serve_scraper(Scraper& scraper, short events, TimePoint now) {
        if (events != 0 && !scraper.responded) {
            if (!read_request(scraper)) return;
        } else if (events != 0 && scraper.finished) {
            if (!discard_input(scraper)) return;
        }
        if (scraper.responded && !scraper.finished && !send_response(scraper, now)) return;
        if (now >= scraper.deadline) close_scraper(scraper);
    }

    // Each of these is false once it closed the scraper.
    bool read_request(Scraper& scraper) {
        const ssize_t n = ::recv(scraper.fd.get(), buffer_.data(), buffer_.size(), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            close_scraper(scraper);  // gone before asking for anything whole
            return false;
        }
        if (n > 0) scraper.request.append(buffer_.data(), static_cast<std::size_t>(n));
        const RequestHeadParser::Verdict verdict = scraper.parser.feed(scraper.request);
        ScrapeRequest request = scraper.parser.request(scraper.request);
        if (verdict == RequestHeadParser::Verdict::incomplete) {
            if (scraper.request.size() <= max_request_bytes) return true;
            request.status = ScrapeRequest::Status::too_large;
        }
        respond(scraper, request);
        return true;
    }
    // Whatever else the client sends is dropped until it closes: closing with input unread
    // would reset the connection and could destroy the response.
    bool discard_input(Scraper& scraper) {
        const ssize_t n = ::recv(scraper.fd.get(), buffer_.data(), buffer_.size(), 0);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            close_scraper(scraper);
            return false;
        }
        return true;
    }
    bool send_response(Scraper& scraper, TimePoint now) {
        const std::string_view left = std::string_view(scraper.response).substr(scraper.response_sent);
        const ssize_t n = ::send(scraper.fd.get(), left.data(), left.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            close_scraper(scraper);
            return false;
        }
        if (n > 0) scraper.response_sent += static_cast<std::size_t>(n);
        if (scraper.response_sent == scraper.response.size()) {
            ::shutdown(scraper.fd.get(), SHUT_WR);
            scraper.finished = true;
            scraper.deadline = std::min(scraper.deadline, now + std::chrono::seconds(1));
        }
        return true;
    }

    void respond(Scraper& scraper, const ScrapeRequest& request) {
        const ScrapeResponse response =
            respond_to_scrape(request, accepting(), [&] { return endpoint_.render(tracker_); });
        scraper.response = http_response_bytes(response);
        scraper.responded = true;
        scraper.deadline = scraper.accepted + scrape_timeout;  // the head's deadline is met
    }
    void close_scraper(Scraper& scraper) {
        if (!scraper.responded) charge(scraper.address, Clock::now());
        forget_fd(scraper.fd.get());
        scraper.fd.reset();
        scraper.over = true;
    }

    MetricsEndpoint& endpoint_;
    const ConnectionTracker& tracker_;
    std::vector<Scraper> scrapers_;  // at most max_scrapers, reserved: accepting never moves them
    std::vector<pollfd> polled_;
    std::array<char, 4096> buffer_;
    std::uint64_t batch_ = 0;
    std::vector<AddressRate> rates_;
};

void MetricsEndpoint::serve(const ConnectionTracker& tracker) {
    std::unique_lock lock(fork_mutex);
    ScrapeLoop loop(*this, tracker);
    for (;;) {
        const int timeout_ms = loop.poll_set();
        lock.unlock();
        const int ready = loop.poll(timeout_ms);
        lock.lock();
        if (ready < 0 && errno != EINTR) return;
        if (loop.woken()) break;
        loop.serve_ready(Clock::now());
    }
    loop.close_all();
    forget_fd(listener_.fd.get());
    forget_fd(wake_.get());
}

}  // namespace zen
