/* SPDX-License-Identifier: MIT */
/* libFuzzer target for sp_frame_decode, the Windows frame decoder (portable C,
 * built and fuzzed natively).
 *
 * The input is the byte stream read from a pipe, in a heap buffer of exactly
 * its size. It is walked frame by frame as the Windows reader does, once with
 * the record size of WSAPROTOCOL_INFOW (628 bytes) and once with a small one
 * so that frames carrying records are easy to reach. Checked on every frame:
 *   - SP_FRAME_OK: the frame fits in what is there, its total is the sum of
 *     its parts and within SP_FRAME_MAX, and re-encoding the decoded header
 *     gives back the same 40 bytes;
 *   - every shorter prefix of a good frame decodes as SP_FRAME_MORE (a reader
 *     that waits for more bytes never misjudges a frame);
 *   - SP_FRAME_MORE with a whole header names a total larger than what is
 *     there; SP_FRAME_BAD leaves the decoded header all zero.
 */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint32_t sp_rec_sizes[] = {628u, 8u};

static void sp_check_prefixes(const unsigned char *buf, const sp_frame_t *f, uint32_t rec) {
  static const size_t cuts[] = {0, 1, 3, 4, SP_FRAME_HDR_SIZE - 1, SP_FRAME_HDR_SIZE};
  sp_frame_t g;
  size_t i;
  for (i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
    if (cuts[i] < f->total && sp_frame_decode(buf, cuts[i], rec, &g) != SP_FRAME_MORE)
      abort();
  if (sp_frame_decode(buf, f->total - 1, rec, &g) != SP_FRAME_MORE)
    abort();
}

static void sp_walk(const unsigned char *buf, size_t size, uint32_t rec) {
  size_t off = 0;
  while (off < size) {
    sp_frame_t f;
    unsigned char again[SP_FRAME_HDR_SIZE];
    size_t avail = size - off;
    int r = sp_frame_decode(buf + off, avail, rec, &f);
    if (r == SP_FRAME_BAD) {
      static const sp_frame_t zero;
      if (memcmp(&f, &zero, sizeof f) != 0)
        abort();
      return;
    }
    if (r == SP_FRAME_MORE) {
      if (avail >= SP_FRAME_HDR_SIZE && f.total <= avail)
        abort();
      return;
    }
    if (r != SP_FRAME_OK)
      abort();
    if (f.total < SP_FRAME_HDR_SIZE || f.total > avail || f.total > SP_FRAME_MAX(rec) ||
        (uint64_t)f.total != (uint64_t)SP_FRAME_HDR_SIZE + (uint64_t)f.nsocks * f.rec_size + f.payload ||
        f.nsocks > SOCKPASS_MAX_SOCKS || f.payload > SOCKPASS_MAX_PAYLOAD)
      abort();
    sp_frame_encode(again, &f);
    if (memcmp(again, buf + off, SP_FRAME_HDR_SIZE) != 0)
      abort();
    sp_check_prefixes(buf + off, &f, rec);
    off += f.total;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  unsigned char *buf;
  size_t i;
  if (size == 0) {
    sp_frame_t f;
    if (sp_frame_decode(data, 0, 628u, &f) != SP_FRAME_MORE)
      abort();
    return 0;
  }
  buf = malloc(size);
  if (buf == NULL)
    return 0;
  memcpy(buf, data, size);
  for (i = 0; i < sizeof sp_rec_sizes / sizeof sp_rec_sizes[0]; i++)
    sp_walk(buf, size, sp_rec_sizes[i]);
  free(buf);
  return 0;
}
