#include "runtime/threads.hpp"

#include <atomic>
#include <string>
#include <system_error>
#include <thread>

#include "net/signals.hpp"
#include "runtime/startup.hpp"
#include "runtime/tracing.hpp"

namespace zen {

int serve_on_threads(int count, std::string_view what, const std::function<int(int)>& body, const Listener& listener,
                     const ServerContext& context) {
    ThreadGroup threads;
    std::atomic<int> failures{0};
    for (int i = 0; i < count; ++i) {
        auto started = threads.start([&failures, &body, &context, what, i] {
            trace_thread_name(context, std::string(what) + " " + std::to_string(i + 1));
            if (body(i) != 0) failures.fetch_add(1);
        });
        if (!started) {
            request_quit();
            threads.wait_all();
            return startup_failed(context, "thread_error",
                                  "cannot start " + std::string(what) + " " + std::to_string(i + 1) + ": " +
                                      started.error());
        }
    }
    if (!announce_serving(listener, context)) request_quit();  // the threads end; exit 1
    threads.wait_all();
    if (!serving_announced()) return 1;
    return failures.load() == 0 ? 0 : 1;
}

Result<Ok> ThreadGroup::start(std::function<void()> body) {
    std::lock_guard lock(mutex_);
    try {
        std::thread([this, body = std::move(body)] {
            body();
            std::lock_guard finished_lock(mutex_);
            --running_;
            finished_.notify_all();
        }).detach();
    } catch (const std::system_error& e) {
        return Error{e.code().message()};
    }
    ++running_;
    return Ok{};
}

void ThreadGroup::wait_all() {
    std::unique_lock lock(mutex_);
    finished_.wait(lock, [this] { return running_ == 0; });
}

}  // namespace zen
