/* SPDX-License-Identifier: MIT */
/* The frame codec (src/frame.h): byte-wise little-endian, no OS headers. */
#include "frame.h"

#include <string.h>

static void sp_put32(unsigned char *p, uint32_t v) {
  p[0] = (unsigned char)(v & 0xffu);
  p[1] = (unsigned char)((v >> 8) & 0xffu);
  p[2] = (unsigned char)((v >> 16) & 0xffu);
  p[3] = (unsigned char)((v >> 24) & 0xffu);
}

static void sp_put16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)(v & 0xffu);
  p[1] = (unsigned char)((v >> 8) & 0xffu);
}

static uint32_t sp_get32(const unsigned char *p) {
  return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
         ((uint32_t)p[3] << 24);
}

static uint16_t sp_get16(const unsigned char *p) {
  return (uint16_t)((unsigned)p[0] | ((unsigned)p[1] << 8));
}

void sp_frame_control(sp_frame_t *f, uint32_t type, uint32_t pid, uint32_t flags) {
  memset(f, 0, sizeof *f);
  f->magic = SP_FRAME_MAGIC;
  f->version = SP_FRAME_VERSION;
  f->type = (uint16_t)type;
  f->flags = flags;
  f->total = SP_FRAME_HDR_SIZE;
  f->pid = pid;
}

void sp_frame_data(sp_frame_t *f, uint32_t type, uint32_t pid, uint32_t nsocks,
                   uint32_t rec_size, uint32_t payload) {
  memset(f, 0, sizeof *f);
  f->magic = SP_FRAME_MAGIC;
  f->version = SP_FRAME_VERSION;
  f->type = (uint16_t)type;
  f->pid = nsocks > 0 ? pid : 0;
  f->nsocks = nsocks;
  f->rec_size = nsocks > 0 ? rec_size : 0;
  f->payload = payload;
  /* The caller's limits keep this far below 2^32 (SP_FRAME_MAX). */
  f->total = SP_FRAME_HDR_SIZE + nsocks * f->rec_size + payload;
}

void sp_frame_encode(unsigned char *out, const sp_frame_t *f) {
  sp_put32(out + 0, f->magic);
  sp_put16(out + 4, f->version);
  sp_put16(out + 6, f->type);
  sp_put32(out + 8, f->flags);
  sp_put32(out + 12, f->total);
  sp_put32(out + 16, f->pid);
  sp_put32(out + 20, f->nsocks);
  sp_put32(out + 24, f->rec_size);
  sp_put32(out + 28, f->payload);
  sp_put32(out + 32, f->reserved[0]);
  sp_put32(out + 36, f->reserved[1]);
}

/* The header's own consistency, before any byte past it is looked at. */
static int sp_frame_check(const sp_frame_t *f, uint32_t rec_size) {
  uint64_t want;
  if (f->magic != SP_FRAME_MAGIC || f->version != SP_FRAME_VERSION)
    return 0;
  if (f->reserved[0] != 0 || f->reserved[1] != 0)
    return 0;
  if (rec_size == 0 || rec_size > 65536)
    return 0; /* a reader bug, not the peer's; refuse rather than trust */
  switch (f->type) {
  case SP_FRAME_HELLO:
    return (f->flags & ~SP_FRAME_HELLO_FLAGS) == 0 && f->pid != 0 && f->nsocks == 0 &&
           f->rec_size == 0 && f->payload == 0 && f->total == SP_FRAME_HDR_SIZE;
  case SP_FRAME_BYE:
  case SP_FRAME_BYE_ACK:
    return f->flags == 0 && f->pid != 0 && f->nsocks == 0 && f->rec_size == 0 &&
           f->payload == 0 && f->total == SP_FRAME_HDR_SIZE;
  case SP_FRAME_DATA:
    if (f->flags != 0 || f->payload > SOCKPASS_MAX_PAYLOAD || f->nsocks > SOCKPASS_MAX_SOCKS)
      return 0;
    if (f->nsocks == 0 && f->payload == 0)
      return 0;
    if (f->nsocks == 0 && (f->pid != 0 || f->rec_size != 0))
      return 0;
    if (f->nsocks > 0 && (f->pid == 0 || f->rec_size != rec_size))
      return 0;
    break;
  case SP_FRAME_DISCARD:
    if (f->flags != 0 || f->payload != 0 || f->nsocks == 0 ||
        f->nsocks > SOCKPASS_MAX_SOCKS || f->pid == 0 || f->rec_size != rec_size)
      return 0;
    break;
  default:
    return 0;
  }
  /* 64-bit arithmetic: no product of hostile fields can wrap. */
  want = (uint64_t)SP_FRAME_HDR_SIZE + (uint64_t)f->nsocks * f->rec_size + f->payload;
  return want == f->total;
}

int sp_frame_decode(const unsigned char *buf, size_t avail, uint32_t rec_size, sp_frame_t *f) {
  memset(f, 0, sizeof *f);
  if (avail < 4)
    return (avail == 0 || memcmp(buf, "SPPK", avail) == 0) ? SP_FRAME_MORE : SP_FRAME_BAD;
  if (sp_get32(buf) != SP_FRAME_MAGIC)
    return SP_FRAME_BAD;
  if (avail < SP_FRAME_HDR_SIZE)
    return SP_FRAME_MORE;
  f->magic = sp_get32(buf + 0);
  f->version = sp_get16(buf + 4);
  f->type = sp_get16(buf + 6);
  f->flags = sp_get32(buf + 8);
  f->total = sp_get32(buf + 12);
  f->pid = sp_get32(buf + 16);
  f->nsocks = sp_get32(buf + 20);
  f->rec_size = sp_get32(buf + 24);
  f->payload = sp_get32(buf + 28);
  f->reserved[0] = sp_get32(buf + 32);
  f->reserved[1] = sp_get32(buf + 36);
  if (!sp_frame_check(f, rec_size)) {
    memset(f, 0, sizeof *f);
    return SP_FRAME_BAD;
  }
  if (avail < f->total)
    return SP_FRAME_MORE;
  return SP_FRAME_OK;
}
