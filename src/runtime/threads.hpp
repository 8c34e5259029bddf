// Groups of threads a server runs and waits for: threaded's workers, reuseport's loops,
// per-client's conversations.
#pragma once

#include <condition_variable>
#include <functional>
#include <mutex>
#include <string_view>

#include "base/result.hpp"
#include "net/listener.hpp"
#include "runtime/options.hpp"

namespace zen {

// Threads that run to completion on their own (detached) and can be waited for together.
class ThreadGroup {
public:
    // Starts body on a new thread; an error (no thread could be created) leaves nothing running.
    Result<Ok> start(std::function<void()> body);
    // Returns once every thread started here has finished.
    void wait_all();

private:
    std::mutex mutex_;
    std::condition_variable finished_;
    int running_ = 0;
};

// How threaded and reuseport serve: `count` threads, each running body(i) to its exit code, the
// announcement (announce_serving) once every one exists, then the wait for all of them. A thread
// that cannot start is a failed start-up ("cannot start <what> N: ..."). Returns 0, or 1 when a
// body failed or the start-up did.
int serve_on_threads(int count, std::string_view what, const std::function<int(int)>& body, const Listener& listener,
                     const ServerContext& context);

}  // namespace zen
