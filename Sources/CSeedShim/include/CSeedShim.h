#ifndef CSEED_SHIM_H
#define CSEED_SHIM_H
// Linux calls and macros Swift's Glibc module does not expose cleanly. No logic lives here.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <errno.h>
#include <stdint.h>

static inline int seed_errno(void) { return errno; }
static inline void seed_set_errno(int e) { errno = e; }
static inline int seed_fcntl_int(int fd, int cmd, int arg) { return fcntl(fd, cmd, arg); }
static inline int seed_fcntl_get(int fd, int cmd) { return fcntl(fd, cmd); }
static inline int seed_open(const char *path, int flags, unsigned int mode) { return open(path, flags, (mode_t)mode); }

static inline uint32_t seed_EPOLLIN(void) { return EPOLLIN; }
static inline uint32_t seed_EPOLLOUT(void) { return EPOLLOUT; }
static inline uint32_t seed_EPOLLERR(void) { return EPOLLERR; }
static inline uint32_t seed_EPOLLHUP(void) { return EPOLLHUP; }
static inline uint32_t seed_EPOLLRDHUP(void) { return EPOLLRDHUP; }
static inline uint32_t seed_EPOLLET(void) { return EPOLLET; }
static inline uint32_t seed_EPOLLEXCLUSIVE(void) { return EPOLLEXCLUSIVE; }

/// epoll_event is packed on x86_64, so Swift must not touch its fields directly.
static inline void seed_epoll_event_set(struct epoll_event *ev, uint32_t events, uint64_t data) {
    ev->events = events;
    ev->data.u64 = data;
}
static inline uint32_t seed_epoll_event_events(const struct epoll_event *ev) { return ev->events; }
static inline uint64_t seed_epoll_event_data(const struct epoll_event *ev) { return ev->data.u64; }
static inline size_t seed_epoll_event_size(void) { return sizeof(struct epoll_event); }


static inline uint32_t seed_EPOLLONESHOT(void) { return EPOLLONESHOT; }

/// Opens a non-blocking, close-on-exec TCP listening socket on a numeric IPv4/IPv6 address.
/// Returns the descriptor, or -errno (-EINVAL for an address that is not numeric).
/// `bound_port` receives the port actually bound (port 0 resolved).
int seed_listen_tcp(const char *host, uint16_t port, int backlog, int reuse_port, uint16_t *bound_port);

/// accept4 with SOCK_NONBLOCK|SOCK_CLOEXEC; writes the peer's numeric address and port and the local port.
/// Returns the descriptor or -errno.
int seed_accept(int listen_fd, char *address, size_t address_capacity, uint16_t *peer_port, uint16_t *local_port);

/// Connects a TCP socket to a numeric address (blocking connect), with TCP_NODELAY. Returns fd or -errno.
int seed_connect_tcp(const char *host, uint16_t port);

/// CLOCK_MONOTONIC in nanoseconds.
int64_t seed_monotonic_ns(void);

/// Sets TCP_NODELAY on a socket; returns 0 or -errno.
int seed_set_nodelay(int fd);

/// Names the calling thread (15 characters at most), for ps/top/perf.
void seed_set_thread_name(const char *name);

// syncfs(2) is a GNU extension hidden without _GNU_SOURCE; SeedStore uses it to make a batch of blobs
// durable with one call before renaming them into place.
extern int syncfs(int fd);
static inline int seed_syncfs(int fd) { return syncfs(fd); }

int seed_shim_version(void);
#endif
