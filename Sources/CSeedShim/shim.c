#define _GNU_SOURCE
#include "CSeedShim.h"
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <pthread.h>

int seed_shim_version(void) { return 1; }

// Parses a numeric IPv4 or IPv6 address into a sockaddr_storage; returns its length or 0.
static socklen_t seed_parse_address(const char *host, uint16_t port, struct sockaddr_storage *ss) {
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        return sizeof(struct sockaddr_in);
    }
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        return sizeof(struct sockaddr_in6);
    }
    return 0;
}

static uint16_t seed_port_of(const struct sockaddr_storage *ss) {
    if (ss->ss_family == AF_INET) return ntohs(((const struct sockaddr_in *)ss)->sin_port);
    if (ss->ss_family == AF_INET6) return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
    return 0;
}

int seed_listen_tcp(const char *host, uint16_t port, int backlog, int reuse_port, uint16_t *bound_port) {
    struct sockaddr_storage ss;
    socklen_t len = seed_parse_address(host, port, &ss);
    if (len == 0) return -EINVAL;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0) goto fail;
    if (reuse_port && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0) goto fail;
    if (ss.ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) goto fail;
    if (bind(fd, (struct sockaddr *)&ss, len) != 0) goto fail;
    if (listen(fd, backlog) != 0) goto fail;
    struct sockaddr_storage got;
    socklen_t got_len = sizeof(got);
    if (getsockname(fd, (struct sockaddr *)&got, &got_len) != 0) goto fail;
    *bound_port = seed_port_of(&got);
    return fd;
fail:;
    int e = errno;
    close(fd);
    return -e;
}

int seed_accept(int listen_fd, char *address, size_t address_capacity, uint16_t *peer_port, uint16_t *local_port) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = accept4(listen_fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return -errno;
    address[0] = 0;
    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, address, (socklen_t)address_capacity);
    } else if (ss.ss_family == AF_INET6) {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, address, (socklen_t)address_capacity);
    }
    *peer_port = seed_port_of(&ss);
    struct sockaddr_storage local;
    socklen_t local_len = sizeof(local);
    *local_port = getsockname(fd, (struct sockaddr *)&local, &local_len) == 0 ? seed_port_of(&local) : 0;
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

int seed_connect_tcp(const char *host, uint16_t port) {
    struct sockaddr_storage ss;
    socklen_t len = seed_parse_address(host, port, &ss);
    if (len == 0) return -EINVAL;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int rc;
    do { rc = connect(fd, (struct sockaddr *)&ss, len); } while (rc != 0 && errno == EINTR);
    if (rc != 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

int64_t seed_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int seed_set_nodelay(int fd) {
    int one = 1;
    return setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == 0 ? 0 : -errno;
}

void seed_set_thread_name(const char *name) { (void)pthread_setname_np(pthread_self(), name); }
