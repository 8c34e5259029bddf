// CPU time of a server as /proc shows it: the process, its threads, and every descendant
// (prefork workers), including children that already exited and were reaped. Linux only.
#pragma once

#include <sys/types.h>

#include "base/result.hpp"

namespace zen {

// User + system seconds: exact for live threads, to a clock tick (usually 10 ms) for threads
// and children that already exited.
Result<double> process_tree_cpu_seconds(pid_t root);

// This process's own user + system seconds, all threads.
double own_cpu_seconds();

}  // namespace zen
