/* SPDX-License-Identifier: MIT */
/*
 * The frame: sockpass's own wire format, used where the OS cannot carry
 * sockets beside the bytes (Windows named pipes). Portable C with no OS
 * headers, so the decoder builds and is fuzzed on every OS.
 *
 * A frame is a 40-byte header, then nsocks records of rec_size bytes each
 * (on Windows one WSAPROTOCOL_INFOW per socket), then payload bytes. Header
 * fields are little-endian unsigned integers; docs/protocol.md describes
 * every field and the handshake built from HELLO frames.
 */
#ifndef SOCKPASS_FRAME_H
#define SOCKPASS_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "sockpass.h"

#define SP_FRAME_MAGIC 0x4B505053u /* the bytes "SPPK" */
#define SP_FRAME_VERSION 1u
#define SP_FRAME_HDR_SIZE 40u

/* Frame types. */
#define SP_FRAME_HELLO 1u   /* "this end is read by process pid" */
#define SP_FRAME_DATA 2u    /* one message: sockets duplicated for pid, payload */
#define SP_FRAME_DISCARD 3u /* sockets duplicated for pid that nobody will claim */
#define SP_FRAME_BYE 4u     /* "pid stops reading this end: duplicate nothing more for it" */
#define SP_FRAME_BYE_ACK 5u /* "every frame I wrote for you is before this one" */

/* HELLO flags. */
#define SP_FRAME_F_REQ 0x1u  /* the sender asks the peer to answer with a HELLO */
#define SP_FRAME_F_PAIR 0x2u /* written when the pair was made, see the docs */
#define SP_FRAME_HELLO_FLAGS (SP_FRAME_F_REQ | SP_FRAME_F_PAIR)

/* The header, decoded. The wire layout is the field order below (the magic
 * first); every field is checked by sp_frame_decode. */
typedef struct {
  uint32_t magic;
  uint16_t version;
  uint16_t type;
  uint32_t flags;
  uint32_t total;    /* bytes in the whole frame, header included */
  uint32_t pid;      /* HELLO, BYE, BYE_ACK: the writer; DATA/DISCARD: the target */
  uint32_t nsocks;   /* socket records that follow the header */
  uint32_t rec_size; /* bytes per socket record; 0 when nsocks is 0 */
  uint32_t payload;  /* payload bytes after the records */
  uint32_t reserved[2];
} sp_frame_t;

_Static_assert(sizeof(sp_frame_t) == SP_FRAME_HDR_SIZE, "the header is 40 bytes on the wire");

/* The largest frame for records of rec_size bytes. */
#define SP_FRAME_MAX(rec_size)                                                 \
  ((size_t)SP_FRAME_HDR_SIZE + (size_t)SOCKPASS_MAX_SOCKS * (size_t)(rec_size) + \
   (size_t)SOCKPASS_MAX_PAYLOAD)

/* sp_frame_decode results. */
#define SP_FRAME_OK 0     /* a whole, valid frame starts the buffer */
#define SP_FRAME_MORE 1   /* valid so far; need f->total (or a header) bytes */
#define SP_FRAME_BAD (-1) /* malformed: the stream cannot be trusted further */

/* Fill f for a frame of the given type; the other fields are zero.
 * sp_frame_control: HELLO, BYE, BYE_ACK. sp_frame_data: DATA, DISCARD. */
void sp_frame_control(sp_frame_t *f, uint32_t type, uint32_t pid, uint32_t flags);
void sp_frame_data(sp_frame_t *f, uint32_t type, uint32_t pid, uint32_t nsocks,
                   uint32_t rec_size, uint32_t payload);

/* Write f's header as SP_FRAME_HDR_SIZE bytes at out. */
void sp_frame_encode(unsigned char *out, const sp_frame_t *f);

/* Decode and check the frame at buf, of which avail bytes are present.
 * rec_size is the only record size this reader accepts. Every field is
 * hostile until checked: magic, version, type, flags, reserved fields, the
 * limits of sockpass.h and the exact total. On SP_FRAME_MORE f->total is the
 * frame's size once the header is complete, else 0. */
int sp_frame_decode(const unsigned char *buf, size_t avail, uint32_t rec_size, sp_frame_t *f);

#endif /* SOCKPASS_FRAME_H */
