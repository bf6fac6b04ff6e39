/* SPDX-License-Identifier: MIT */
/* Internals shared by the POSIX backend's files (and its fuzz target). */
#ifndef SOCKPASS_POSIX_H
#define SOCKPASS_POSIX_H

#include <stddef.h>
#include <sys/socket.h>

/* Room for the control data of one message: SOCKPASS_MAX_SOCKS descriptors
 * and, beside them, credentials a peer may send unasked (SCM_CREDENTIALS is
 * 12 bytes on Linux, struct cmsgcred about 84 on the BSDs). */
#define SP_CMSG_ROOM (1024 + 256)
#define SP_CMSG_MAXFDS ((SP_CMSG_ROOM) / sizeof(int))

/* Walk the control messages of a received msghdr, bounded by msg_controllen,
 * and copy every descriptor carried by SCM_RIGHTS into fds (room for cap).
 * Descriptors past cap are not copied but counted in *lost, so the caller can
 * report truncation; with cap >= SP_CMSG_MAXFDS nothing is ever lost.
 * *other counts control messages of any other kind (ignored). Returns the
 * number of descriptors copied. Reads only; never closes anything. */
size_t sp__cmsg_fds(const struct msghdr *msg, int *fds, size_t cap, size_t *lost,
                    size_t *other);

/* 0 when fd is an open socket, SOCKPASS_ENOTSOCK for another kind of
 * descriptor, or the fstat error (SOCKPASS_EBADF for a closed one). */
int sp__is_sock(int fd);

#endif
