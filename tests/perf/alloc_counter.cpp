// A counting allocator for a whole process, loaded with LD_PRELOAD into a `zen` a test starts.
//
// Every malloc-family call (operator new ends in malloc too) adds one to a 64-bit counter kept in
// the file named by ZEN_ALLOCATION_COUNT_FILE, mapped shared: the test reads the file while the
// server runs, and prefork's workers, forked with the mapping, count into the same place. The
// memory itself comes from glibc's own entry points (__libc_malloc and friends), so nothing but
// the counting changes.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>

extern "C" {
void* __libc_malloc(std::size_t size);
void* __libc_calloc(std::size_t count, std::size_t size);
void* __libc_realloc(void* pointer, std::size_t size);
void* __libc_memalign(std::size_t alignment, std::size_t size);
}

namespace {

std::atomic<std::uint64_t>* counter = nullptr;

void count() {
    if (counter != nullptr) counter->fetch_add(1, std::memory_order_relaxed);
}

__attribute__((constructor)) void map_counter() {
    const char* path = std::getenv("ZEN_ALLOCATION_COUNT_FILE");
    if (path == nullptr) return;
    const int fd = ::open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return;
    void* shared = ::mmap(nullptr, sizeof(std::uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);
    if (shared != MAP_FAILED) counter = static_cast<std::atomic<std::uint64_t>*>(shared);
}

}  // namespace

extern "C" {

void* malloc(std::size_t size) {
    count();
    return __libc_malloc(size);
}

void* calloc(std::size_t count_of, std::size_t size) {
    count();
    return __libc_calloc(count_of, size);
}

void* realloc(void* pointer, std::size_t size) {
    count();
    return __libc_realloc(pointer, size);
}

void* memalign(std::size_t alignment, std::size_t size) {
    count();
    return __libc_memalign(alignment, size);
}

void* aligned_alloc(std::size_t alignment, std::size_t size) {
    count();
    return __libc_memalign(alignment, size);
}

int posix_memalign(void** result, std::size_t alignment, std::size_t size) {
    count();
    void* memory = __libc_memalign(alignment, size);
    if (memory == nullptr) return ENOMEM;
    *result = memory;
    return 0;
}

}  // extern "C"
