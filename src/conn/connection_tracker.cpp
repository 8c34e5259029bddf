#include "conn/connection_tracker.hpp"

#include <sys/mman.h>

#include <cerrno>
#include <new>

#include "base/text.hpp"

namespace zen {

Result<ConnectionTracker*> create_shared_connection_tracker(TimePoint now) {
    void* memory = ::mmap(nullptr, sizeof(ConnectionTracker), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                          -1, 0);
    if (memory == MAP_FAILED) return Error{"cannot map shared memory: " + errno_text(errno)};
    return new (memory) ConnectionTracker(now);
}

}  // namespace zen
