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

struct Scraper {
    Fd fd;
    TimePoint deadline;
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

    // What poll() found ready, then the scrapers done with dropped.
    void serve_ready(TimePoint now) {
        if ((polled_[1].revents & POLLIN) != 0) accept_scrapers(now);
        for (std::size_t i = 0; i < scrapers_.size(); ++i) {
            const short events = i + 2 < polled_.size() ? polled_[i + 2].revents : 0;  // new ones: none yet
            serve_scraper(scrapers_[i], events, now);
        }
        std::erase_if(scrapers_, [](const Scraper& scraper) { return scraper.over; });
    }

    void close_all() {
        for (Scraper& scraper : scrapers_) close_scraper(scraper);
    }

private:
    void accept_scrapers(TimePoint now) {
        for (int accepted = 0; accepted < 16; ++accepted) {
            AcceptOutcome outcome = accept_client(endpoint_.listener_);
            if (outcome.status == AcceptStatus::accepted) {
                // Past the limit a scraper is closed at once: the ones already here go on.
                if (scrapers_.size() >= max_scrapers) continue;
                remember_fd(outcome.client.fd.get());
                Scraper& scraper = scrapers_.emplace_back();
                scraper.fd = std::move(outcome.client.fd);
                scraper.deadline = now + scrape_timeout;
                continue;
            }
            if (outcome.status != AcceptStatus::client_gone) break;
        }
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
        const ScrapeRequest request = read_scrape_request(scraper.request, max_request_bytes);
        if (request.status != ScrapeRequest::Status::incomplete) respond(scraper, request);
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
    }
    void close_scraper(Scraper& scraper) {
        forget_fd(scraper.fd.get());
        scraper.fd.reset();
        scraper.over = true;
    }

    MetricsEndpoint& endpoint_;
    const ConnectionTracker& tracker_;
    std::vector<Scraper> scrapers_;  // at most max_scrapers, reserved: accepting never moves them
    std::vector<pollfd> polled_;
    std::array<char, 4096> buffer_;
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
