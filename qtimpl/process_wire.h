// Process workers: shared-memory byte buffers and the message protocol the
// parent's proxy and the helper process speak over a SOCK_SEQPACKET socket.
// One message = one packet: a fixed header, then text, then an inline value;
// a large value travels as a sealed memfd (SCM_RIGHTS) instead of inline.
#pragma once

#include "qtworker.h"

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

namespace qtw {
namespace wire {

constexpr uint32_t kProtocol = 2;  // 2: INIT carries capacity_bytes; kClose, kTaken (pipes)
constexpr size_t kInlineMax = WORKER_BYTES_SHARED_MIN;  // larger: memfd
constexpr size_t kMaxText = 32 * 1024;                  // longer text is cut
// Values passed by descriptor (large: frames) the helper may have sent
// before the parent has taken them into its stream: what bounds the memory
// in flight, since the socket would hold hundreds of such small packets.
constexpr int kWindow = 4;

inline bool by_descriptor(const worker_bytes *v) { return v && v->size >= kInlineMax; }

enum Type : uint32_t {
    // parent -> helper
    kInit = 1,   // text = module path '\0' symbol '\0' capacity_bytes (decimal); value = arg;
                 // a = protocol, b = capacity
    kGo,         // start the function (sends / pause before it are queued)
    kSend,       // value
    kPause,
    kResume,
    kQuit,
    kRelease,    // value = u64 ids of lent buffers the parent has freed
    kAck,        // a = how many values passed by descriptor are now in the stream
    kClose,      // worker_close_input: no more sends after those before it
    // helper -> parent
    // (a value passed as a descriptor carries b = its lend id, 0 = none)
    kYield = 16, // value
    kWarn,       // text
    kProgress,   // a = done, b = total, text (F_TEXT) optional
    kCustom,     // text = name, value
    kOutput,     // a = 1 stdout / 2 stderr, text = the line
    kPaused,     // the function has parked
    kReturn,     // outcome RETURNED: value
    kFail,       // outcome ERRORED: a = code, text
    kAborted,    // outcome ABORTED
    kTaken,      // a = how many sent values the function has received since the last
};

enum Flags : uint32_t {
    kHasValue = 1,  // a non-NULL value (else the value is NULL)
    kValueFd = 2,   // the value is the memfd passed with the message
    kHasText = 4,
};

struct Header {
    uint32_t type;
    uint32_t flags;
    int64_t a, b;
    uint64_t text_len, value_len;
};

// The largest packet: header, text, inline value.
constexpr size_t kMaxPacket = sizeof(Header) + kMaxText + kInlineMax;

// An encoded message: the packet and, for a large value, a descriptor to pass
// (owned: closed by the destructor).
struct Out {
    std::string packet;
    int fd = -1;
    Out() = default;
    Out(Out &&o) noexcept : packet(std::move(o.packet)), fd(o.fd) { o.fd = -1; }
    Out &operator=(Out &&o) noexcept;
    Out(const Out &) = delete;
    Out &operator=(const Out &) = delete;
    ~Out();
};

inline Type type_of(const Out &o) {
    Header h;
    std::memcpy(&h, o.packet.data(), sizeof h);
    return (Type)h.type;
}

// A decoded message. value is owned (free with worker_bytes_free) unless
// taken; has_value false means "NULL value".
struct In {
    Header h{};
    std::string text;
    worker_bytes *value = nullptr;
    bool has_value = false;
    In() = default;
    In(const In &) = delete;
    In &operator=(const In &) = delete;
    ~In() { worker_bytes_free(value); }
    worker_bytes *take() {
        worker_bytes *v = value;
        value = nullptr;
        return v;
    }
};

// Encodes a message; value (a worker_bytes *, may be NULL) is only read: a
// shared buffer's descriptor is duplicated, anything else copied. text may be
// NULL (no F_TEXT). Returns false when out of memory / descriptors.
bool encode(Out &out, Type type, int64_t a, int64_t b, const char *text, size_t text_len,
            const worker_bytes *value, bool has_value);

// Sends one packet. blocking=false: false with errno EAGAIN when the socket
// is full. Never raises SIGPIPE.
bool send(int sock, const Out &out, bool blocking);

// Who gets a lent buffer back once the receiver frees it (see bytes::).
struct Lender {
    std::weak_ptr<void> owner;
    void (*give_back)(const std::shared_ptr<void> &owner, uint64_t id);
};

// Receives one packet into buf (kMaxPacket bytes) without blocking; a lent
// buffer received is given back through lender when freed (lender may be
// NULL). Returns 1 = a message, 0 = nothing now (EAGAIN), -1 = end of
// stream, -2 = protocol violation (malformed packet, bad descriptor),
// kOutOfResources = the packet was sound but this process could not take
// it: no descriptor free for the one it carried (EMFILE: the kernel drops
// it) or no memory to map or copy its value.
constexpr int kOutOfResources = -3;
int receive(int sock, std::vector<char> &buf, In &in, const Lender *lender = nullptr);

// Moves fd to a number >= min_fd (close-on-exec; the old one is closed).
// Returns the new descriptor, or -1 (fd closed too).
int dup_above(int fd, int min_fd);

}  // namespace wire

// Recycling: fresh shared-memory pages are the dominant cost of a frame
// (allocating and zeroing them costs ~10x mapping existing ones), so the
// helper *lends* its shared buffers: passed with an id, kept mapped here when
// the library frees them, and reused by worker_bytes_new once the parent
// has freed (unmapped) its mapping and said so (kRelease).
namespace bytes {
// The memfd of a shared buffer made by worker_bytes_new in this process, or
// -1 (small, received, or not made by the library).
int shared_fd(const worker_bytes *b);
// A new memfd of size bytes, sealed against shrinking and growing; -1 on error.
int make_memfd(size_t size);
// Maps a received memfd as a buffer of size bytes (takes fd: always closed).
// NULL when the descriptor is not a sealed memfd that large, or on error.
// With a lender and id != 0, freeing it gives it back.
worker_bytes *map_received(int fd, size_t size, const wire::Lender *lender, uint64_t id);
// This process lends its shared buffers (the helper does).
void enable_lending();
// The id to pass b under (0: not lent, e.g. not made here or lending off).
uint64_t lend(const worker_bytes *b);
// The receiver is done with a lent buffer: it may be reused.
void given_back(uint64_t id);
}  // namespace bytes
}  // namespace qtw
