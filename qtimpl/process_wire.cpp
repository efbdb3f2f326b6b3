// The process-worker protocol: encoding, sending and receiving packets over a
// SOCK_SEQPACKET socket (message boundaries kept, descriptors passed along).
#include "process_wire.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace qtw {
namespace wire {

Out &Out::operator=(Out &&o) noexcept {
    if (this != &o) {
        if (fd >= 0) close(fd);
        packet = std::move(o.packet);
        fd = o.fd;
        o.fd = -1;
    }
    return *this;
}

Out::~Out() {
    if (fd >= 0) close(fd);
}

namespace {

// A descriptor for a large value: the buffer's own memfd (zero copy; lent
// under *lend_id when this process lends), else a new memfd the bytes are
// copied into once.
int value_fd(const worker_bytes *v, uint64_t *lend_id) {
    int own = bytes::shared_fd(v);
    if (own >= 0) {
        *lend_id = bytes::lend(v);
        return fcntl(own, F_DUPFD_CLOEXEC, 0);
    }
    int fd = bytes::make_memfd(v->size);
    if (fd < 0) return -1;
    size_t done = 0;
    while (done < v->size) {
        ssize_t n = pwrite(fd, v->data + done, v->size - done, (off_t)done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)n;
    }
    return fd;
}

}  // namespace

bool encode(Out &out, Type type, int64_t a, int64_t b, const char *text, size_t text_len,
            const worker_bytes *value, bool has_value) {
    Header h{};
    h.type = type;
    h.a = a;
    h.b = b;
    if (text) {
        h.flags |= kHasText;
        h.text_len = text_len < kMaxText ? text_len : kMaxText;
    }
    bool inline_value = false;
    if (has_value && value) {
        h.flags |= kHasValue;
        h.value_len = value->size;
        if (value->size < kInlineMax) {
            inline_value = true;
        } else {
            h.flags |= kValueFd;
            uint64_t lend_id = 0;
            out.fd = value_fd(value, &lend_id);
            if (out.fd < 0) return false;
            h.b = (int64_t)lend_id;
        }
    }
    try {
        out.packet.reserve(sizeof h + h.text_len + (inline_value ? h.value_len : 0));
        out.packet.assign(reinterpret_cast<const char *>(&h), sizeof h);
        if (h.text_len) out.packet.append(text, h.text_len);
        if (inline_value && h.value_len)
            out.packet.append(reinterpret_cast<const char *>(value->data), h.value_len);
    } catch (...) {
        return false;
    }
    return true;
}

bool send(int sock, const Out &out, bool blocking) {
    iovec iov{const_cast<char *>(out.packet.data()), out.packet.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))];
    if (out.fd >= 0) {
        std::memset(control, 0, sizeof control);
        msg.msg_control = control;
        msg.msg_controllen = sizeof control;
        cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        std::memcpy(CMSG_DATA(c), &out.fd, sizeof(int));
    }
    int flags = MSG_NOSIGNAL | (blocking ? 0 : MSG_DONTWAIT);
    for (;;) {
        ssize_t n = sendmsg(sock, &msg, flags);
        if (n >= 0) return true;
        if (errno != EINTR) return false;
    }
}

int receive(int sock, std::vector<char> &buf, In &in, const Lender *lender) {
    if (buf.size() < kMaxPacket) buf.resize(kMaxPacket);
    iovec iov{buf.data(), buf.size()};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(4 * sizeof(int))];
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    // ECONNRESET: the peer closed with packets of ours unread. Linux reports
    // that once, before the packets it had sent us (its outcome): read on.
    do {
        n = recvmsg(sock, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    } while (n < 0 && (errno == EINTR || errno == ECONNRESET));
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    if (n == 0) return -1;  // the other end closed (we never send empty packets)

    // Every descriptor received is ours to close, whatever the packet says.
    std::vector<int> fds;
    for (cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; i++) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            fds.push_back(fd);
        }
    }
    auto fail = [&fds](int rc = -2) {
        for (int fd : fds) close(fd);
        return rc;
    };
    if ((msg.msg_flags & MSG_TRUNC) || (size_t)n < sizeof(Header)) return fail();
    // MSG_CTRUNC on a packet of ours (at most one descriptor, room for four):
    // the kernel could not install it here (EMFILE) and dropped it.
    if (msg.msg_flags & MSG_CTRUNC) return fail(kOutOfResources);
    std::memcpy(&in.h, buf.data(), sizeof(Header));
    const Header &h = in.h;
    bool by_fd = (h.flags & kHasValue) && (h.flags & kValueFd);
    size_t body = (size_t)n - sizeof(Header);
    size_t inline_len = (h.flags & kHasValue) && !by_fd ? h.value_len : 0;
    if (h.text_len > kMaxText || (!(h.flags & kHasText) && h.text_len) ||
        inline_len >= kInlineMax || body != h.text_len + inline_len ||
        fds.size() != (by_fd ? 1u : 0u) || (by_fd && h.value_len == 0))
        return fail();
    const char *p = buf.data() + sizeof(Header);
    if (h.flags & kHasText) in.text.assign(p, h.text_len);
    in.has_value = (h.flags & kHasValue) != 0;
    if (by_fd) {
        // (map_received closes the descriptor)
        in.value = bytes::map_received(fds[0], h.value_len, lender, (uint64_t)h.b);
        if (!in.value) return kOutOfResources;
    } else if (in.has_value) {
        in.value = worker_bytes_copy(p + h.text_len, inline_len);
        if (!in.value) return kOutOfResources;
    }
    return 1;
}

int dup_above(int fd, int min_fd) {
    if (fd < 0 || fd >= min_fd) return fd;
    int moved = fcntl(fd, F_DUPFD_CLOEXEC, min_fd);
    close(fd);
    return moved;
}

}  // namespace wire
}  // namespace qtw
