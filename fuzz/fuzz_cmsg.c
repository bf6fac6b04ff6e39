/* SPDX-License-Identifier: MIT */
/* libFuzzer target for sp__cmsg_fds, the POSIX control-message walker.
 *
 * The input is the control data of one received message, as msg_control with
 * msg_controllen = size, in a heap buffer of exactly that size so that any
 * read past the length the kernel reported is caught by AddressSanitizer.
 * The walker only reads: the integers it returns are never used as
 * descriptors here, so nothing is ever closed.
 *
 * Checked on every input:
 *   - copied + lost descriptors fit in the bytes given;
 *   - the result does not depend on cap: walking with a smaller cap copies a
 *     prefix of the same list and counts the rest as lost;
 *   - a cap of 0 (fds may then be NULL) copies nothing.
 */
#include "posix.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static int full[SP_CMSG_MAXFDS], part[SP_CMSG_MAXFDS];
  struct msghdr msg;
  unsigned char *ctl = NULL;
  size_t n_full, lost_full, other_full, n_part, lost_part, other_part, cap, n0, lost0, other0;

  if (size > 0) {
    ctl = malloc(size);
    if (ctl == NULL)
      return 0;
    memcpy(ctl, data, size);
  }
  memset(&msg, 0, sizeof msg);
  msg.msg_control = ctl;
  msg.msg_controllen = size;

  n_full = sp__cmsg_fds(&msg, full, SP_CMSG_MAXFDS, &lost_full, &other_full);
  if (n_full > SP_CMSG_MAXFDS || (n_full + lost_full) * sizeof(int) > size)
    abort();
  /* A buffer of SP_CMSG_ROOM bytes (what the receiver gives the kernel)
   * never loses a descriptor with cap SP_CMSG_MAXFDS. */
  if (size <= SP_CMSG_ROOM && lost_full != 0)
    abort();

  cap = n_full / 2;
  n_part = sp__cmsg_fds(&msg, part, cap, &lost_part, &other_part);
  if (n_part != cap || n_part + lost_part != n_full + lost_full || other_part != other_full ||
      memcmp(part, full, n_part * sizeof(int)) != 0)
    abort();

  n0 = sp__cmsg_fds(&msg, NULL, 0, &lost0, &other0);
  if (n0 != 0 || lost0 != n_full + lost_full || other0 != other_full)
    abort();

  free(ctl);
  return 0;
}
