/* SPDX-License-Identifier: MIT */
/* The control-message walker: every byte in msg_control came from the kernel
 * on behalf of a peer, so lengths are checked against the buffer, not trusted. */
#include "posix.h"

#include <string.h>

size_t sp__cmsg_fds(const struct msghdr *msg, int *fds, size_t cap, size_t *lost,
                    size_t *other) {
  const unsigned char *base = (const unsigned char *)msg->msg_control;
  size_t total = msg->msg_controllen;
  size_t off = 0, n = 0;

  *lost = 0;
  *other = 0;
  if (base == NULL)
    return 0;
  /* CMSG_FIRSTHDR/CMSG_NXTHDR, done by hand so that every step is bounded by
   * the length the kernel reported, whatever cmsg_len claims. */
  while (total - off >= sizeof(struct cmsghdr)) {
    struct cmsghdr h;
    size_t len, data, k, step;
    memcpy(&h, base + off, sizeof h);
    len = (size_t)h.cmsg_len;
    if (len < CMSG_LEN(0) || len > total - off)
      break; /* malformed or cut short: stop, as the kernel's own macros do */
    data = len - CMSG_LEN(0);
    if (h.cmsg_level == SOL_SOCKET && h.cmsg_type == SCM_RIGHTS) {
      for (k = 0; k + sizeof(int) <= data; k += sizeof(int)) {
        int fd;
        memcpy(&fd, base + off + CMSG_LEN(0) + k, sizeof fd);
        if (n < cap)
          fds[n++] = fd;
        else
          (*lost)++;
      }
    } else {
      (*other)++;
    }
    step = CMSG_SPACE(data);
    if (step > total - off)
      break;
    off += step;
  }
  return n;
}
