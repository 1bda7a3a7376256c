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

// syncfs(2) is a GNU extension hidden without _GNU_SOURCE; SeedStore uses it to make a batch of blobs
// durable with one call before renaming them into place.
extern int syncfs(int fd);
static inline int seed_syncfs(int fd) { return syncfs(fd); }

int seed_shim_version(void);
#endif
