#include "base/build_info.hpp"

#include <liburing.h>

#include <cstring>
#include <utility>

#ifndef ZEN_VERSION
#define ZEN_VERSION "0.0.0"
#endif
#ifndef ZEN_COMMIT
#define ZEN_COMMIT "unknown"
#endif

namespace zen {

std::string_view zen_version() { return ZEN_VERSION; }
std::string_view zen_commit() { return ZEN_COMMIT; }

std::string compiler_text() {
#if defined(__clang__)
    return "clang++ " __clang_version__;
#elif defined(__GNUC__)
    return "g++ " + std::to_string(__GNUC__) + "." + std::to_string(__GNUC_MINOR__) + "." +
           std::to_string(__GNUC_PATCHLEVEL__);
#else
    return "unknown compiler";
#endif
}

namespace {

constexpr std::pair<unsigned, const char*> feature_names[] = {
    {IORING_FEAT_SINGLE_MMAP, "SINGLE_MMAP"},     {IORING_FEAT_NODROP, "NODROP"},
    {IORING_FEAT_SUBMIT_STABLE, "SUBMIT_STABLE"}, {IORING_FEAT_RW_CUR_POS, "RW_CUR_POS"},
    {IORING_FEAT_CUR_PERSONALITY, "CUR_PERSONALITY"}, {IORING_FEAT_FAST_POLL, "FAST_POLL"},
    {IORING_FEAT_POLL_32BITS, "POLL_32BITS"},     {IORING_FEAT_SQPOLL_NONFIXED, "SQPOLL_NONFIXED"},
    {IORING_FEAT_EXT_ARG, "EXT_ARG"},             {IORING_FEAT_NATIVE_WORKERS, "NATIVE_WORKERS"},
    {IORING_FEAT_RSRC_TAGS, "RSRC_TAGS"},         {IORING_FEAT_CQE_SKIP, "CQE_SKIP"},
    {IORING_FEAT_LINKED_FILE, "LINKED_FILE"},
};

// The opcodes --arch uring submits, then ones it might take up (zero-copy send, direct close).
constexpr std::pair<int, const char*> opcode_names[] = {
    {IORING_OP_ACCEPT, "ACCEPT"},   {IORING_OP_RECV, "RECV"},         {IORING_OP_SEND, "SEND"},
    {IORING_OP_POLL_ADD, "POLL_ADD"}, {IORING_OP_ASYNC_CANCEL, "ASYNC_CANCEL"},
    {IORING_OP_TIMEOUT, "TIMEOUT"}, {IORING_OP_SHUTDOWN, "SHUTDOWN"}, {IORING_OP_CLOSE, "CLOSE"},
    {IORING_OP_PROVIDE_BUFFERS, "PROVIDE_BUFFERS"}, {IORING_OP_SENDMSG, "SENDMSG"},
    {IORING_OP_SEND_ZC, "SEND_ZC"},
};

}  // namespace

std::string uring_report() {
    io_uring ring{};
    io_uring_params params{};
    const int rc = io_uring_queue_init_params(2, &ring, &params);
    if (rc < 0) return "io_uring: unavailable (" + std::string(std::strerror(-rc)) + ")";
    std::string text = "io_uring features:";
    for (const auto& [bit, name] : feature_names) {
        if ((params.features & bit) != 0) text += std::string(" ") + name;
    }
    io_uring_probe* probe = io_uring_get_probe_ring(&ring);
    if (probe == nullptr) {
        text += "\nio_uring opcodes: cannot probe (Linux 5.6 or later needed)";
    } else {
        std::string supported;
        std::string missing;
        for (const auto& [opcode, name] : opcode_names) {
            (io_uring_opcode_supported(probe, opcode) ? supported : missing) += std::string(" ") + name;
        }
        text += "\nio_uring opcodes:" + supported;
        if (!missing.empty()) text += "\nio_uring opcodes missing:" + missing;
        io_uring_free_probe(probe);
    }
    io_uring_queue_exit(&ring);
    return text;
}

std::string version_report() {
    return "zen " + std::string(zen_version()) + "\ncommit: " + std::string(zen_commit()) +
           "\ncompiler: " + compiler_text() + "\n" + uring_report() + "\n";
}

}  // namespace zen
