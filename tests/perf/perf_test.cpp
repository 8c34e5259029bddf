// Issue 9's properties that can be proven rather than timed (timings live in `make bench`):
//   * no allocation per answer in steady state, in every architecture: a counting allocator
//     (alloc_counter.cpp) preloaded into the server counts every malloc-family call while
//     clients that are already connected ask thousands of questions, one at a time and pipelined;
//   * what an idle connection costs in server memory: ten thousand of them, RSS per connection.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <thread>

#include "conformance/architectures.hpp"
#include "support/harness.hpp"

namespace zen::test {
namespace {

const std::vector<std::pair<std::string, std::string>> book = {
    {"Beautiful is better than?", "Ugly."},
    {"Explicit is better than?", "Implicit."},
    {"Simple is better than?", "Complex."},
};

// A file holding one 64-bit counter that the preloaded allocator increments.
class AllocationCounter {
public:
    AllocationCounter() {
        char name[] = "/tmp/zen-allocations-XXXXXX";
        fd_ = ::mkstemp(name);
        if (fd_ < 0) throw std::runtime_error("mkstemp failed");
        path_ = name;
        if (::ftruncate(fd_, sizeof(std::uint64_t)) != 0) throw std::runtime_error("ftruncate failed");
        void* shared = ::mmap(nullptr, sizeof(std::uint64_t), PROT_READ, MAP_SHARED, fd_, 0);
        if (shared == MAP_FAILED) throw std::runtime_error("mmap failed");
        value_ = static_cast<const volatile std::uint64_t*>(shared);
    }
    ~AllocationCounter() {
        ::munmap(const_cast<std::uint64_t*>(value_), sizeof(std::uint64_t));
        ::close(fd_);
        ::unlink(path_.c_str());
    }
    std::vector<std::string> wrapper() const {
        return {"env", std::string("LD_PRELOAD=") + ZEN_ALLOC_COUNTER, "ZEN_ALLOCATION_COUNT_FILE=" + path_};
    }
    std::uint64_t value() const { return *value_; }

private:
    int fd_ = -1;
    std::string path_;
    const volatile std::uint64_t* value_ = nullptr;
};

class Allocations : public ::testing::TestWithParam<ServerVariant> {};

// Each connection asks one question and waits, then sends sixteen at once and reads them all.
// Returns the answers checked.
std::size_t converse(std::vector<Connection>& connections, int rounds) {
    std::string pipelined;
    std::string expected;
    for (int i = 0; i < 16; ++i) {
        pipelined += book[i % book.size()].first;
        expected += book[i % book.size()].second;
    }
    std::size_t answers = 0;
    for (int round = 0; round < rounds; ++round) {
        for (Connection& connection : connections) {
            const auto& [question, answer] = book[static_cast<std::size_t>(round) % book.size()];
            connection.send(question);
            const Drained one = connection.receive_bytes(answer.size());
            if (one.data != answer) throw std::runtime_error("wrong answer: " + one.data);
            connection.send(pipelined);
            const Drained many = connection.receive_bytes(expected.size());
            if (many.data != expected) throw std::runtime_error("wrong pipelined answers: " + many.data);
            answers += 17;
        }
    }
    return answers;
}

TEST_P(Allocations, SteadyStateAnswersAllocateNothing) {
    const AllocationCounter counter;
    auto server = Server::start(GetParam().args, "127.0.0.1", counter.wrapper());
    ASSERT_GT(counter.value(), 0u) << "the counting allocator is not loaded";

    // --arch single serves one client at a time; the others have pools of at least four.
    const int clients = GetParam().name == "single" ? 1 : 4;
    std::vector<Connection> connections;
    for (int i = 0; i < clients; ++i) connections.push_back(Connection::open("127.0.0.1", server->port()));
    converse(connections, 50);  // every buffer reaches its working size
    std::this_thread::sleep_for(200ms);

    const std::uint64_t before = counter.value();
    const std::size_t answers = converse(connections, 300);
    std::this_thread::sleep_for(200ms);
    const std::uint64_t allocations = counter.value() - before;
    EXPECT_EQ(allocations, 0u) << allocations << " allocations for " << answers << " answers ("
                               << static_cast<double>(allocations) / static_cast<double>(answers) << " per answer)";
    connections.clear();  // a stop waits (up to the drain time) for open clients to close
    EXPECT_EQ(server->process().stop(SIGTERM), 0) << server->log();
}

INSTANTIATE_TEST_SUITE_P(EveryArchitecture, Allocations, ::testing::ValuesIn(conformance_variants),
                         [](const auto& info) { return info.param.name; });

// --- memory per idle connection -------------------------------------------------------------

struct IdleBudget {
    ServerVariant variant;
    long bytes_per_connection;
};

void PrintTo(const IdleBudget& budget, std::ostream* out) { *out << budget.variant.name; }

class IdleMemory : public ::testing::TestWithParam<IdleBudget> {};

// Opens `count` connections, each asking one question and left open after its answer. In
// batches, so the accept queue never overflows (a dropped SYN costs the client a second).
void open_idle(std::vector<Connection>& connections, std::uint16_t port, int count) {
    const auto& [question, answer] = book[0];
    constexpr int batch = 100;  // within the default --backlog (128)
    for (int done = 0; done < count; done += batch) {
        const std::size_t first = connections.size();
        for (int i = 0; i < std::min(batch, count - done); ++i) {
            connections.push_back(Connection::open("127.0.0.1", port));
            connections.back().send(question);
        }
        for (std::size_t i = first; i < connections.size(); ++i) {
            const Drained reply = connections[i].receive_bytes(answer.size());
            if (reply.data != answer) throw std::runtime_error("connection " + std::to_string(i) + " got: " + reply.data);
        }
    }
}

TEST_P(IdleMemory, TenThousandIdleConnectionsStayWithinBudget) {
    rlimit limit{};
    ::getrlimit(RLIMIT_NOFILE, &limit);
    limit.rlim_cur = limit.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &limit);
    constexpr int idle = 10'000;
    if (limit.rlim_cur < idle + 200) GTEST_SKIP() << "needs a descriptor limit above " << idle + 200 << ", have " << limit.rlim_cur;

    auto server = Server::start(GetParam().variant.args);
    std::vector<Connection> connections;
    connections.reserve(idle + 100);
    open_idle(connections, server->port(), 100);  // the loop's own first growth is not per connection
    std::this_thread::sleep_for(200ms);
    const long before_kib = server->process().rss_kib();
    open_idle(connections, server->port(), idle);
    std::this_thread::sleep_for(200ms);
    const long after_kib = server->process().rss_kib();
    const long per_connection = (after_kib - before_kib) * 1024 / idle;
    RecordProperty("bytes_per_idle_connection", static_cast<int>(per_connection));
    std::cout << GetParam().variant.name << ": " << per_connection << " bytes of RSS per idle connection ("
              << before_kib << " KiB with 100, " << after_kib << " KiB with " << idle + 100 << ")\n";
    EXPECT_LE(per_connection, GetParam().bytes_per_connection);
    EXPECT_TRUE(answered_within(connections.front(), book[1].first, book[1].second, 5s));
    connections.clear();
    EXPECT_EQ(server->process().stop(SIGTERM), 0) << server->log().substr(0, 2000);
}

INSTANTIATE_TEST_SUITE_P(EventArchitectures, IdleMemory,
                         ::testing::Values(IdleBudget{{"epoll", {"--arch", "epoll"}}, 1024},
                                           IdleBudget{{"uring", {"--arch", "uring"}}, 1024},
                                           IdleBudget{{"callbacks", {"--arch", "callbacks"}}, 1024},
                                           IdleBudget{{"coroutines", {"--arch", "coroutines"}}, 4096}),
                         [](const auto& info) { return info.param.variant.name; });

}  // namespace
}  // namespace zen::test
