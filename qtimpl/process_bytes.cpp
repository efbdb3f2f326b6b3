// worker_bytes: small buffers are one malloc block (header + data); large
// ones live in a sealed memfd mapping, so a process worker passes the
// descriptor instead of the bytes and the receiver maps the same pages.
// A registry remembers which buffers are mappings (and their memfd), so any
// worker_bytes pointer can be inspected safely, whoever made it. It also
// keeps the helper's lent buffers and its pool of reusable ones.
#include "process_wire.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <unordered_map>

#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U  // Linux 6.3; older kernels refuse it (EINVAL)
#endif

namespace qtw {
namespace bytes {
namespace {

// Bounds on what lending keeps mapped (each entry holds a descriptor).
constexpr size_t kMaxLent = 64, kMaxPooled = 8;

// Pages of a shared buffer, without the worker_bytes header.
struct Pages {
    unsigned char *data;
    size_t length;
    int fd;
    void unmap() const {
        munmap(data, length);
        if (fd >= 0) close(fd);
    }
};

struct Mapping {
    int fd;            // our memfd (-1 for a received mapping: nothing to pass on)
    size_t length;     // mapped length
    bool mapped;       // false: a large heap fallback (data is malloc'ed)
    uint64_t lent_id;  // lent to the parent under this id (helper side)
    wire::Lender lender;     // received lent buffer: give it back when freed
    uint64_t lender_id;
};

struct Registry {
    std::mutex mu;
    std::unordered_map<const worker_bytes *, Mapping> by_buffer;
    bool lending = false;
    uint64_t next_id = 1;
    std::unordered_map<uint64_t, Pages> lent;  // freed here, still mapped by the parent
    std::deque<Pages> pool;                    // given back: reusable, oldest first
};

// Leaked on purpose: buffers may be freed during static destruction.
Registry &registry() {
    static Registry *r = new Registry;
    return *r;
}
[[maybe_unused]] const bool made_at_load = (registry(), true);  // as QTW_MAKE_AT_LOAD (worker_p.h)

void remember(const worker_bytes *b, const Mapping &m) {
    Registry &r = registry();
    std::lock_guard<std::mutex> lk(r.mu);
    r.by_buffer[b] = m;
}

worker_bytes *new_header(unsigned char *data, size_t size) {
    auto *b = static_cast<worker_bytes *>(std::malloc(sizeof(worker_bytes)));
    if (b) {
        b->size = size;
        b->data = data;
    }
    return b;
}

worker_bytes *new_small(size_t size) {
    // One block: the data follows the header (16-byte aligned like malloc).
    auto *b = static_cast<worker_bytes *>(std::calloc(1, sizeof(worker_bytes) + size));
    if (!b) return nullptr;
    b->size = size;
    b->data = size ? reinterpret_cast<unsigned char *>(b + 1) : nullptr;
    return b;
}

worker_bytes *new_heap_large(size_t size) {
    auto *data = static_cast<unsigned char *>(std::calloc(1, size));
    if (!data) return nullptr;
    worker_bytes *b = new_header(data, size);
    if (!b) {
        std::free(data);
        return nullptr;
    }
    remember(b, Mapping{-1, size, false, 0, {}, 0});
    return b;
}

// A given-back buffer of exactly this size, if there is one.
bool take_pooled(size_t size, Pages *out) {
    Registry &r = registry();
    std::lock_guard<std::mutex> lk(r.mu);
    for (auto it = r.pool.begin(); it != r.pool.end(); ++it) {
        if (it->length != size) continue;
        *out = *it;
        r.pool.erase(it);
        return true;
    }
    return false;
}

worker_bytes *new_shared(size_t size) {
    Pages p{nullptr, size, -1};
    bool reused = take_pooled(size, &p);
    if (reused) {
        std::memset(p.data, 0, size);  // still much cheaper than fresh pages
    } else {
        p.fd = make_memfd(size);
        if (p.fd < 0) return nullptr;
        void *m = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, p.fd, 0);
        if (m == MAP_FAILED) {
            close(p.fd);
            return nullptr;
        }
        p.data = static_cast<unsigned char *>(m);
    }
    worker_bytes *b = new_header(p.data, size);
    if (!b) {
        p.unmap();
        return nullptr;
    }
    remember(b, Mapping{p.fd, size, true, 0, {}, 0});
    return b;
}

}  // namespace

int make_memfd(size_t size) {
    int fd = memfd_create("qtworker-bytes", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_NOEXEC_SEAL);
    if (fd < 0 && errno == EINVAL)
        fd = memfd_create("qtworker-bytes", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return -1;
    // Sealed at once: neither side can shrink it under the other's mapping
    // (a SIGBUS in the viewer), and a receiver can check that.
    if (ftruncate(fd, (off_t)size) != 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int shared_fd(const worker_bytes *b) {
    if (!b) return -1;
    Registry &r = registry();
    std::lock_guard<std::mutex> lk(r.mu);
    auto it = r.by_buffer.find(b);
    return it == r.by_buffer.end() ? -1 : it->second.fd;
}

worker_bytes *map_received(int fd, size_t size, const wire::Lender *lender, uint64_t id) {
    struct stat st;
    int seals = fcntl(fd, F_GET_SEALS);
    bool ok = size > 0 && seals >= 0 && (seals & F_SEAL_SHRINK) && fstat(fd, &st) == 0 &&
              (unsigned long long)st.st_size >= size;
    // Populated: one call maps every page instead of a fault per page.
    void *p = ok ? mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0)
                 : MAP_FAILED;
    close(fd);  // the mapping keeps the memory; no descriptor per frame
    if (p == MAP_FAILED) return nullptr;
    worker_bytes *b = new_header(static_cast<unsigned char *>(p), size);
    if (!b) {
        munmap(p, size);
        return nullptr;
    }
    Mapping m{-1, size, true, 0, {}, 0};
    if (lender && id) {
        m.lender = *lender;
        m.lender_id = id;
    }
    remember(b, m);
    return b;
}

void enable_lending() {
    Registry &r = registry();
    std::lock_guard<std::mutex> lk(r.mu);
    r.lending = true;
}

uint64_t lend(const worker_bytes *b) {
    Registry &r = registry();
    std::lock_guard<std::mutex> lk(r.mu);
    auto it = r.by_buffer.find(b);
    if (!r.lending || it == r.by_buffer.end() || it->second.fd < 0) return 0;
    if (!it->second.lent_id) it->second.lent_id = r.next_id++;
    return it->second.lent_id;
}

// The parent's RELEASE is read on the helper's main thread, the same thread
// that sent the buffer and freed it right after: it is in `lent` by now.
void given_back(uint64_t id) {
    Pages evicted{nullptr, 0, -1};
    {
        Registry &r = registry();
        std::lock_guard<std::mutex> lk(r.mu);
        auto it = r.lent.find(id);
        if (it == r.lent.end()) return;
        r.pool.push_back(it->second);
        r.lent.erase(it);
        if (r.pool.size() <= kMaxPooled) return;
        evicted = r.pool.front();
        r.pool.pop_front();
    }
    evicted.unmap();
}

}  // namespace bytes
}  // namespace qtw

extern "C" {

worker_bytes *worker_bytes_new(size_t size) {
    using namespace qtw::bytes;
    if (size < qtw::wire::kInlineMax) return new_small(size);
    if (worker_bytes *b = new_shared(size)) return b;
    return new_heap_large(size);  // no memfd here: still a valid buffer, copied on send
}

worker_bytes *worker_bytes_copy(const void *data, size_t size) {
    if (size && !data) return nullptr;
    worker_bytes *b = worker_bytes_new(size);
    if (b && size) std::memcpy(b->data, data, size);
    return b;
}

void worker_bytes_free(void *p) {
    using namespace qtw::bytes;
    if (!p) return;
    auto *b = static_cast<worker_bytes *>(p);
    Mapping m{-1, 0, false, 0, {}, 0};
    bool found = false, keep = false;
    {
        Registry &r = registry();
        std::lock_guard<std::mutex> lk(r.mu);
        auto it = r.by_buffer.find(b);
        if (it != r.by_buffer.end()) {
            m = it->second;
            found = true;
            r.by_buffer.erase(it);
            // Lent: the parent still maps these pages; keep them for reuse.
            keep = m.lent_id && r.lent.size() < kMaxLent;
            if (keep) r.lent[m.lent_id] = Pages{b->data, m.length, m.fd};
        }
    }
    if (found && !keep) {
        if (m.mapped)
            Pages{b->data, m.length, m.fd}.unmap();
        else
            std::free(b->data);
        // Unmapped here: the lender may reuse the pages now.
        if (m.lender_id)
            if (std::shared_ptr<void> owner = m.lender.owner.lock())
                m.lender.give_back(owner, m.lender_id);
    }
    std::free(b);
}

}  // extern "C"
