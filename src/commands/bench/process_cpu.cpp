#include "commands/bench/process_cpu.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <iterator>
#include <optional>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

namespace zen {

namespace {

struct ProcessTimes {
    pid_t parent = 0;
    double own_seconds = 0;       // this process, all its threads
    double children_seconds = 0;  // its children that exited and were reaped
};

// A small /proc file read whole, or nothing when the process is gone. Plain read(): a process
// can exit between the directory listing and the read, and an ifstream then throws from
// underflow() ("No such process") where this only returns nothing.
std::optional<std::string> read_proc_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    std::string text;
    char buffer[4096];
    for (;;) {
        const ssize_t got = ::read(fd, buffer, sizeof buffer);
        if (got > 0) {
            text.append(buffer, static_cast<std::size_t>(got));
        } else if (got == 0 || errno != EINTR) {
            ::close(fd);
            if (got < 0) return std::nullopt;
            return text;
        }
    }
}

// Nanoseconds on a CPU of each live thread, from the scheduler: exact, where /proc/PID/stat
// truncates each process to whole clock ticks (64 prefork workers would lose up to 0.64 s).
double live_thread_seconds(pid_t pid) {
    long long nanoseconds = 0;
    const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
    if (DIR* directory = opendir(tasks.c_str())) {
        while (const dirent* entry = readdir(directory)) {
            if (entry->d_name[0] == '.') continue;
            if (const auto schedstat = read_proc_file(tasks + "/" + entry->d_name + "/schedstat")) {
                nanoseconds += std::strtoll(schedstat->c_str(), nullptr, 10);
            }
        }
        closedir(directory);
    }
    return static_cast<double>(nanoseconds) / 1e9;
}

bool read_stat(pid_t pid, ProcessTimes& times) {
    const auto read = read_proc_file("/proc/" + std::to_string(pid) + "/stat");
    if (!read) return false;
    const std::string& line = *read;
    // The command name is in parentheses and may hold spaces; the fields follow the last ')'.
    const std::size_t close = line.rfind(')');
    if (close == std::string::npos) return false;
    std::istringstream fields(line.substr(close + 1));
    std::vector<std::string> values{std::istream_iterator<std::string>(fields), std::istream_iterator<std::string>()};
    // values[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
    if (values.size() < 15) return false;
    const auto ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    times.parent = static_cast<pid_t>(std::stoll(values[1]));
    // The tick count includes threads that already exited; the scheduler's count is exact for
    // the live ones. The larger is the closer to the truth.
    times.own_seconds = std::max(static_cast<double>(std::stoll(values[11]) + std::stoll(values[12])) / ticks,
                                 live_thread_seconds(pid));
    times.children_seconds = static_cast<double>(std::stoll(values[13]) + std::stoll(values[14])) / ticks;
    return true;
}

}  // namespace

Result<double> process_tree_cpu_seconds(pid_t root) {
    std::unordered_map<pid_t, ProcessTimes> processes;
    if (DIR* proc = opendir("/proc")) {
        while (const dirent* entry = readdir(proc)) {
            char* end = nullptr;
            const long pid = std::strtol(entry->d_name, &end, 10);
            ProcessTimes times;
            if (*end == '\0' && pid > 0 && read_stat(static_cast<pid_t>(pid), times))
                processes.emplace(static_cast<pid_t>(pid), times);
        }
        closedir(proc);
    }
    if (!processes.contains(root)) return Error{"no process " + std::to_string(root)};
    double seconds = 0;
    std::vector<pid_t> pending{root};
    while (!pending.empty()) {
        const pid_t pid = pending.back();
        pending.pop_back();
        seconds += processes[pid].own_seconds + processes[pid].children_seconds;
        for (const auto& [child, times] : processes)
            if (times.parent == pid) pending.push_back(child);
    }
    return seconds;
}

double own_cpu_seconds() {
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    const auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec / 1e6; };
    return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

}  // namespace zen
