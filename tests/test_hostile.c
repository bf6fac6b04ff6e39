/* SPDX-License-Identifier: MIT */
/* Hostile peers on Windows. The test owns the raw server end of a named
 * pipe (message mode, overlapped, as src/win/chan.c makes them), lets the
 * library connect to it with sockpass_connect, speaks the HELLO handshake of
 * docs/protocol.md itself, and then writes what a broken or hostile peer
 * would: garbage, headers beyond the limits, frames cut short, records
 * replayed, records for another process, records of garbage. Frames are
 * built here byte by byte, independently of src/frame.c.
 *
 * Every test runs between SP_TEST's handle counts (the system handle table),
 * and each case also counts around itself. docs/protocol.md, "Hostile
 * peers", states the rules checked here.
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#ifndef _WIN32
#error "test_hostile.c is the Windows backend's test"
#endif

/* ---- The frame, as docs/protocol.md describes it ---- */

#define MAGIC 0x4B505053u /* "SPPK" */
#define HDR 40u
#define REC ((uint32_t)sizeof(WSAPROTOCOL_INFOW))
#define T_HELLO 1
#define T_DATA 2
#define T_DISCARD 3
#define T_BYE 4
#define T_BYE_ACK 5
#define FRAME_MAX (HDR + SOCKPASS_MAX_SOCKS * 628u + SOCKPASS_MAX_PAYLOAD)

_Static_assert(sizeof(WSAPROTOCOL_INFOW) == 628, "a record is 628 bytes");

#define WAIT_MS sp_scale_ms(5000) /* every wait of the test and of the channel */

typedef struct {
  uint32_t magic;
  uint16_t version, type;
  uint32_t flags, total, pid, nsocks, rec_size, payload, res0, res1;
} hdr_t;

static unsigned char wbuf[FRAME_MAX + 1024], rbuf[FRAME_MAX + 1024];

static void put16(unsigned char *p, uint16_t v) {
  p[0] = (unsigned char)v;
  p[1] = (unsigned char)(v >> 8);
}

static uint16_t get16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static void hdr_put(unsigned char *b, const hdr_t *h) {
  sp_put32(b, h->magic);
  put16(b + 4, h->version);
  put16(b + 6, h->type);
  sp_put32(b + 8, h->flags);
  sp_put32(b + 12, h->total);
  sp_put32(b + 16, h->pid);
  sp_put32(b + 20, h->nsocks);
  sp_put32(b + 24, h->rec_size);
  sp_put32(b + 28, h->payload);
  sp_put32(b + 32, h->res0);
  sp_put32(b + 36, h->res1);
}

static hdr_t hdr_get(const unsigned char *b) {
  hdr_t h;
  h.magic = sp_get32(b);
  h.version = get16(b + 4);
  h.type = get16(b + 6);
  h.flags = sp_get32(b + 8);
  h.total = sp_get32(b + 12);
  h.pid = sp_get32(b + 16);
  h.nsocks = sp_get32(b + 20);
  h.rec_size = sp_get32(b + 24);
  h.payload = sp_get32(b + 28);
  h.res0 = sp_get32(b + 32);
  h.res1 = sp_get32(b + 36);
  return h;
}

/* A control frame (HELLO, BYE, BYE_ACK). */
static hdr_t hdr_ctl(uint16_t type, uint32_t pid, uint32_t flags) {
  hdr_t h;
  memset(&h, 0, sizeof h);
  h.magic = MAGIC;
  h.version = 1;
  h.type = type;
  h.flags = flags;
  h.total = HDR;
  h.pid = pid;
  return h;
}

/* A DATA header; total in 32-bit arithmetic, as a careless peer adds. */
static hdr_t hdr_data(uint32_t pid, uint32_t nsocks, uint32_t payload) {
  hdr_t h = hdr_ctl(T_DATA, pid, 0);
  h.nsocks = nsocks;
  h.rec_size = nsocks > 0 ? REC : 0;
  h.payload = payload;
  h.total = HDR + nsocks * h.rec_size + payload;
  return h;
}

/* A whole, valid DATA frame in b: n records, then len bytes of data. */
static size_t frame_data(unsigned char *b, uint32_t pid, const WSAPROTOCOL_INFOW *recs, uint32_t n,
                         const void *data, uint32_t len) {
  hdr_t h = hdr_data(n > 0 ? pid : 0, n, len);
  hdr_put(b, &h);
  if (n > 0)
    memcpy(b + HDR, recs, (size_t)n * REC);
  if (len > 0)
    memcpy(b + HDR + (size_t)n * REC, data, len);
  return h.total;
}

/* Deterministic garbage: xorshift32 from a fixed seed. */
static void fill_random(unsigned char *b, size_t n, uint32_t seed) {
  size_t i;
  uint32_t x = seed ? seed : 1;
  for (i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b[i] = (unsigned char)(x >> 11);
  }
}

static uint32_t self_pid(void) { return (uint32_t)GetCurrentProcessId(); }

/* ---- The hostile peer: the raw server end of a pipe the library connected to ---- */

typedef struct {
  HANDLE h, ev;
  sockpass_chan_t *c;
} peer_t;

static volatile LONG pipe_counter;

/* Finish an overlapped operation begun with result ok, waiting up to ms.
 * Returns 0 or the operation's error (ERROR_OPERATION_ABORTED on timeout). */
static DWORD raw_finish(peer_t *p, OVERLAPPED *ov, BOOL ok, DWORD *n, DWORD ms) {
  DWORD err = ok ? 0 : GetLastError();
  *n = 0;
  if (!ok && err != ERROR_IO_PENDING)
    return err;
  if (WaitForSingleObject(ov->hEvent, ms) != WAIT_OBJECT_0)
    CancelIoEx(p->h, ov);
  if (!GetOverlappedResult(p->h, ov, n, TRUE))
    return GetLastError();
  return 0;
}

/* One message of len bytes, written whole. */
static void raw_write(peer_t *p, const void *buf, size_t len) {
  OVERLAPPED ov;
  DWORD n, err;
  memset(&ov, 0, sizeof ov);
  ov.hEvent = p->ev;
  err = raw_finish(p, &ov, WriteFile(p->h, buf, (DWORD)len, NULL, &ov), &n, WAIT_MS);
  if (err != 0 || n != len)
    fail_msg("raw write of %u bytes: error %lu, %lu written", (unsigned)len, (unsigned long)err,
             (unsigned long)n);
}

/* One message the library wrote, into rbuf: its length, or -1 when nothing
 * came within ms. */
static long raw_read(peer_t *p, DWORD ms) {
  OVERLAPPED ov;
  DWORD n, err;
  memset(&ov, 0, sizeof ov);
  ov.hEvent = p->ev;
  err = raw_finish(p, &ov, ReadFile(p->h, rbuf, (DWORD)sizeof rbuf, NULL, &ov), &n, ms);
  return err == 0 ? (long)n : -1;
}

/* Make the pipe, let the library connect, and speak the handshake: read the
 * library's HELLO (it names this process), answer with our own. */
static void peer_open(peer_t *p) {
  char name[96];
  wchar_t wname[128];
  OVERLAPPED ov;
  DWORD n, err;
  hdr_t h;
  long got;
  memset(p, 0, sizeof *p);
  snprintf(name, sizeof name, "sockpass-hostile-%lu-%ld", (unsigned long)GetCurrentProcessId(),
           (long)InterlockedIncrement(&pipe_counter));
  _snwprintf(wname, sizeof wname / sizeof wname[0], L"\\\\.\\pipe\\%hs", name);
  wname[sizeof wname / sizeof wname[0] - 1] = 0;
  p->ev = CreateEventW(NULL, TRUE, FALSE, NULL);
  assert_non_null(p->ev);
  p->h = CreateNamedPipeW(wname,
                          PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED | FILE_FLAG_FIRST_PIPE_INSTANCE,
                          PIPE_TYPE_MESSAGE | PIPE_READMODE_MESSAGE | PIPE_WAIT, 1, 256 * 1024,
                          256 * 1024, 0, NULL);
  assert_true(p->h != INVALID_HANDLE_VALUE);
  assert_sp(sockpass_connect(name, &p->c), 0);
  memset(&ov, 0, sizeof ov);
  ov.hEvent = p->ev;
  err = raw_finish(p, &ov, ConnectNamedPipe(p->h, &ov), &n, WAIT_MS);
  assert_true(err == 0 || err == ERROR_PIPE_CONNECTED);
  got = raw_read(p, WAIT_MS);
  assert_int_equal(got, HDR);
  h = hdr_get(rbuf);
  assert_int_equal(h.magic, MAGIC);
  assert_int_equal(h.version, 1);
  assert_int_equal(h.type, T_HELLO);
  assert_int_equal(h.flags, 0);
  assert_int_equal(h.total, HDR);
  assert_int_equal(h.pid, self_pid());
  assert_int_equal(h.nsocks | h.rec_size | h.payload | h.res0 | h.res1, 0);
  h = hdr_ctl(T_HELLO, self_pid(), 0);
  hdr_put(wbuf, &h);
  raw_write(p, wbuf, HDR);
  assert_sp(sockpass_set_timeout(p->c, WAIT_MS), 0);
}

/* The peer goes away: its end of the pipe closes. */
static void peer_hangup(peer_t *p) {
  if (p->h != NULL)
    CloseHandle(p->h);
  p->h = NULL;
}

static void peer_close(peer_t *p) {
  sockpass_close(p->c);
  p->c = NULL;
  peer_hangup(p);
  CloseHandle(p->ev);
}

/* Write a valid DATA frame carrying only text. */
static void raw_text(peer_t *p, const char *text) {
  raw_write(p, wbuf, frame_data(wbuf, 0, NULL, 0, text, (uint32_t)strlen(text)));
}

/* ---- What the library must answer ---- */

#define NOT_SET ((sockpass_sock_t)0x5eed)

/* The next message is text alone. */
static void expect_text(sockpass_chan_t *c, const char *want) {
  char buf[256];
  size_t n = 0, len = sizeof buf;
  assert_sp(sockpass_recv(c, NULL, &n, buf, &len), 0);
  assert_int_equal(n, 0);
  assert_int_equal(len, strlen(want));
  assert_memory_equal(buf, want, len);
}

/* sockpass_recv fails with want and hands nothing over. */
static void expect_error(sockpass_chan_t *c, int want) {
  sockpass_sock_t socks[4];
  char buf[256];
  size_t n = 4, len = sizeof buf, i;
  for (i = 0; i < 4; i++)
    socks[i] = NOT_SET;
  assert_sp(sockpass_recv(c, socks, &n, buf, &len), want);
  assert_int_equal(n, 0);
  assert_int_equal(len, 0);
  for (i = 0; i < 4; i++)
    assert_true(socks[i] == NOT_SET || socks[i] == INVALID_SOCKET);
}

/* One message with one socket, a live one on port, and text. */
static sockpass_sock_t expect_socket(sockpass_chan_t *c, unsigned short port, const char *want) {
  sockpass_sock_t s[2] = {NOT_SET, NOT_SET};
  char buf[256];
  size_t n = 2, len = sizeof buf;
  assert_sp(sockpass_recv(c, s, &n, buf, &len), 0);
  assert_int_equal(n, 1);
  assert_int_equal(len, strlen(want));
  assert_memory_equal(buf, want, len);
  assert_int_equal(sp_sock_port(s[0]), port);
  return s[0];
}

/* A poisoned channel: every receive gives SOCKPASS_EPROTO (the valid frame
 * the peer wrote after the bad one never comes out), sends with sockets are
 * refused with it too, sends without sockets still go out. */
static void expect_poisoned(peer_t *p) {
  sockpass_sock_t s;
  unsigned short port;
  hdr_t h;
  int before;
  expect_error(p->c, SOCKPASS_EPROTO);
  expect_error(p->c, SOCKPASS_EPROTO);
  assert_sp(sockpass_set_timeout(p->c, SOCKPASS_NONBLOCK), 0);
  expect_error(p->c, SOCKPASS_EPROTO);
  assert_sp(sockpass_set_timeout(p->c, WAIT_MS), 0);
  assert_sp(sockpass_send(p->c, NULL, 0, "still", 5), 0);
  assert_int_equal(raw_read(p, WAIT_MS), HDR + 5);
  h = hdr_get(rbuf);
  assert_true(h.magic == MAGIC && h.type == T_DATA && h.nsocks == 0 && h.payload == 5);
  assert_memory_equal(rbuf + HDR, "still", 5);
  s = sp_udp_socket(&port);
  assert_true(s != INVALID_SOCKET);
  before = sp_count_fds();
  assert_sp(sockpass_send(p->c, &s, 1, "sock", 4), SOCKPASS_EPROTO);
  assert_int_equal(sp_count_fds(), before); /* nothing was duplicated */
  closesocket(s);
  expect_error(p->c, SOCKPASS_EPROTO);
}

/* A socket of this process and a record of it duplicated for pid. */
static sockpass_sock_t dup_for(uint32_t pid, WSAPROTOCOL_INFOW *info, unsigned short *port) {
  sockpass_sock_t s = sp_udp_socket(port);
  assert_true(s != INVALID_SOCKET);
  if (WSADuplicateSocketW(s, pid, info) != 0)
    fail_msg("WSADuplicateSocketW: %d", WSAGetLastError());
  return s;
}

/* Claim a record as its target would, and close what it names. */
static void claim_and_close(const WSAPROTOCOL_INFOW *rec) {
  WSAPROTOCOL_INFOW info = *rec;
  SOCKET s = WSASocketW(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, &info, 0,
                        WSA_FLAG_OVERLAPPED);
  assert_true(s != INVALID_SOCKET);
  closesocket(s);
}

/* The handle count now must be before; prints both for docs/reliability.md. */
static void expect_handles(const char *what, int cases, int before) {
  int after = sp_count_fds();
  print_message("hostile: %-44s %2d case(s), handles %d before, %d after\n", what, cases, before,
                after);
  assert_int_equal(after, before);
}

/* ---- Malformed frames: garbage, bad fields, beyond the limits, wrong
 * totals. Each gives SOCKPASS_EPROTO and poisons the channel. ---- */

#define NBAD 38

/* Bad frame number i in b; its name in *name. */
static size_t bad_frame(int i, unsigned char *b, const char **name) {
  uint32_t self = self_pid();
  hdr_t h = hdr_data(0, 0, 5); /* valid until changed below */
  size_t extra = 5;            /* bytes written after the header */
  switch (i) {
  case 0:
    *name = "64 random bytes";
    fill_random(b, 64, 0x50c4a55u);
    b[0] = (unsigned char)(b[0] == 'S' ? 's' : b[0]);
    return 64;
  case 1:
    *name = "one byte";
    b[0] = 0xa5;
    return 1;
  case 2:
    *name = "three bytes, not a magic's start (SPX)";
    memcpy(b, "SPX", 3);
    return 3;
  case 3:
    *name = "a magic cut short (SPP), then a whole frame";
    memcpy(b, "SPP", 3);
    return 3;
  case 4:
    *name = "magic SPPX";
    h.magic = 0x58505053u;
    break;
  case 5:
    *name = "magic in the other byte order (KPPS)";
    h.magic = 0x5350504bu;
    break;
  case 6:
    *name = "version 0";
    h.version = 0;
    break;
  case 7:
    *name = "version 2";
    h.version = 2;
    break;
  case 8:
    *name = "type 0";
    h.type = 0;
    break;
  case 9:
    *name = "type 6";
    h.type = 6;
    break;
  case 10:
    *name = "type 0xffff";
    h.type = 0xffff;
    break;
  case 11:
    *name = "DATA with a flag";
    h.flags = 1;
    break;
  case 12:
    *name = "reserved word 0 set";
    h.res0 = 1;
    break;
  case 13:
    *name = "reserved word 1 set";
    h.res1 = 0x80000000u;
    break;
  case 14:
    *name = "HELLO naming pid 0";
    h = hdr_ctl(T_HELLO, 0, 0);
    extra = 0;
    break;
  case 15:
    *name = "HELLO with an unknown flag";
    h = hdr_ctl(T_HELLO, self, 0x4);
    extra = 0;
    break;
  case 16:
    *name = "HELLO with a payload";
    h = hdr_ctl(T_HELLO, self, 0);
    h.payload = 5;
    h.total = HDR + 5;
    break;
  case 17:
    *name = "BYE with a socket record";
    h = hdr_ctl(T_BYE, self, 0);
    h.nsocks = 1;
    h.rec_size = REC;
    h.total = HDR + REC;
    extra = REC;
    break;
  case 18:
    *name = "BYE_ACK naming pid 0";
    h = hdr_ctl(T_BYE_ACK, 0, 0);
    extra = 0;
    break;
  case 19:
    *name = "DATA with neither sockets nor bytes";
    h = hdr_data(0, 0, 0);
    extra = 0;
    break;
  case 20:
    *name = "DATA without sockets naming a pid";
    h.pid = self;
    break;
  case 21:
    *name = "DATA without sockets with a record size";
    h.rec_size = REC;
    break;
  case 22:
    *name = "DATA with a socket for pid 0";
    h = hdr_data(0, 1, 5);
    extra = REC + 5;
    break;
  case 23:
    *name = "record size 627";
    h = hdr_data(self, 1, 5);
    h.rec_size = REC - 1;
    h.total = HDR + REC - 1 + 5;
    extra = REC - 1 + 5;
    break;
  case 24:
    *name = "record size 632";
    h = hdr_data(self, 1, 5);
    h.rec_size = REC + 4;
    h.total = HDR + REC + 4 + 5;
    extra = REC + 4 + 5;
    break;
  case 25:
    *name = "DISCARD with a payload";
    h = hdr_data(self, 1, 5);
    h.type = T_DISCARD;
    extra = REC + 5;
    break;
  case 26:
    *name = "DISCARD without sockets";
    h = hdr_data(0, 0, 0);
    h.type = T_DISCARD;
    extra = 0;
    break;
  /* Beyond the limits. */
  case 27:
    *name = "254 sockets (SOCKPASS_MAX_SOCKS + 1)";
    h = hdr_data(self, SOCKPASS_MAX_SOCKS + 1, 0);
    extra = (size_t)(SOCKPASS_MAX_SOCKS + 1) * REC;
    break;
  case 28:
    *name = "payload 65537 (SOCKPASS_MAX_PAYLOAD + 1)";
    h = hdr_data(0, 0, SOCKPASS_MAX_PAYLOAD + 1);
    extra = SOCKPASS_MAX_PAYLOAD + 1;
    break;
  case 29:
    *name = "payload 0xffffffff (total wraps to 39)";
    h = hdr_data(0, 0, 0xffffffffu);
    extra = 0;
    break;
  case 30:
    *name = "2^31 sockets (total wraps to 45)";
    h = hdr_data(self, 0x80000000u, 5);
    break;
  case 31:
    *name = "0xffffffff sockets";
    h = hdr_data(self, 0xffffffffu, 5);
    break;
  /* Totals that do not add up. */
  case 32:
    *name = "total one more than the parts";
    h.total = HDR + 6;
    extra = 6;
    break;
  case 33:
    *name = "total one less than the parts";
    h.total = HDR + 4;
    extra = 4;
    break;
  case 34:
    *name = "total 0";
    h.total = 0;
    break;
  case 35:
    *name = "total 39, less than a header";
    h.total = HDR - 1;
    break;
  case 36:
    *name = "total 0xffffffff";
    h.total = 0xffffffffu;
    break;
  case 37:
    *name = "HELLO total 41";
    h = hdr_ctl(T_HELLO, self, 0);
    h.total = HDR + 1;
    extra = 1;
    break;
  default:
    fail_msg("no bad frame %d", i);
  }
  hdr_put(b, &h);
  memset(b + HDR, 'x', extra);
  return HDR + extra;
}

static void malformed_frames(void **s) {
  int i, lo = 0, hi = 0;
  (void)s;
  for (i = 0; i < NBAD; i++) {
    const char *name = "";
    peer_t p;
    size_t len;
    int before = sp_count_fds(), after;
    peer_open(&p);
    len = bad_frame(i, wbuf, &name);
    raw_write(&p, wbuf, len);
    raw_text(&p, "after"); /* valid, and never delivered */
    expect_poisoned(&p);
    peer_close(&p);
    after = sp_count_fds();
    if (after != before)
      fail_msg("%s: %d handles before, %d after", name, before, after);
    if (i == 0 || before < lo)
      lo = before;
    if (i == 0 || before > hi)
      hi = before;
  }
  print_message("hostile: malformed frames: %d cases, each with equal handle counts (%d..%d)\n",
                NBAD, lo, hi);
}

/* The frames before a bad one, each read on its own (one frame per pipe
 * message), are delivered; the bad one then poisons the channel. */
static void valid_then_malformed(void **s) {
  peer_t p;
  WSAPROTOCOL_INFOW info;
  unsigned short port;
  sockpass_sock_t mine, got;
  int before = sp_count_fds();
  (void)s;
  peer_open(&p);
  mine = dup_for(self_pid(), &info, &port);
  raw_write(&p, wbuf, frame_data(wbuf, self_pid(), &info, 1, "first", 5));
  raw_write(&p, "garbage!", 8);
  raw_text(&p, "after");
  got = expect_socket(p.c, port, "first");
  closesocket(got);
  expect_poisoned(&p);
  peer_close(&p);
  closesocket(mine);
  expect_handles("valid frame, then garbage", 1, before);
}

/* A valid frame with a socket and garbage behind it in the same pipe
 * message: read together, so the channel is poisoned before the frame is
 * delivered. Its socket was duplicated into this process all the same:
 * sockpass_close must claim and close it. */
static void valid_and_garbage_in_one_message(void **s) {
  peer_t p;
  WSAPROTOCOL_INFOW info;
  unsigned short port;
  sockpass_sock_t mine;
  size_t len;
  int before = sp_count_fds();
  (void)s;
  peer_open(&p);
  mine = dup_for(self_pid(), &info, &port);
  len = frame_data(wbuf, self_pid(), &info, 1, "first", 5);
  fill_random(wbuf + len, 16, 0xbadf00du);
  wbuf[len] = 'x'; /* not a magic */
  raw_write(&p, wbuf, len + 16);
  expect_error(p.c, SOCKPASS_EPROTO);
  expect_error(p.c, SOCKPASS_EPROTO);
  peer_close(&p);
  closesocket(mine);
  expect_handles("valid frame + garbage in one message", 1, before);
}

/* ---- Frames cut short ---- */

/* A header promising three records, then the peer closes: SOCKPASS_EOF,
 * again and again. */
static void truncated_header_then_close(void **s) {
  peer_t p;
  hdr_t h = hdr_data(self_pid(), 3, 0);
  int before = sp_count_fds();
  (void)s;
  peer_open(&p);
  hdr_put(wbuf, &h);
  raw_write(&p, wbuf, HDR);
  peer_hangup(&p);
  expect_error(p.c, SOCKPASS_EOF);
  expect_error(p.c, SOCKPASS_EOF);
  assert_sp(sockpass_send(p.c, NULL, 0, "x", 1), SOCKPASS_EOF);
  peer_close(&p);
  expect_handles("header promising 3 records, then close", 1, before);
}

/* Twenty bytes of a header, then the peer closes. */
static void truncated_half_header_then_close(void **s) {
  peer_t p;
  hdr_t h = hdr_data(0, 0, 5);
  int before = sp_count_fds();
  (void)s;
  peer_open(&p);
  hdr_put(wbuf, &h);
  raw_write(&p, wbuf, 20);
  peer_hangup(&p);
  expect_error(p.c, SOCKPASS_EOF);
  expect_error(p.c, SOCKPASS_EOF);
  peer_close(&p);
  expect_handles("half a header, then close", 1, before);
}

/* A header promising two records, one whole record (duplicated for this
 * process, so its handle is here already), then the peer closes. The
 * receiver gets SOCKPASS_EOF; the socket the record names must not stay in
 * this process after sockpass_close. */
static void truncated_record_then_close(void **s) {
  peer_t p;
  WSAPROTOCOL_INFOW info;
  unsigned short port;
  sockpass_sock_t mine;
  hdr_t h = hdr_data(self_pid(), 2, 0);
  int before = sp_count_fds();
  (void)s;
  peer_open(&p);
  mine = dup_for(self_pid(), &info, &port);
  hdr_put(wbuf, &h);
  memcpy(wbuf + HDR, &info, REC);
  raw_write(&p, wbuf, HDR + REC);
  peer_hangup(&p);
  expect_error(p.c, SOCKPASS_EOF);
  expect_error(p.c, SOCKPASS_EOF);
  peer_close(&p);
  closesocket(mine);
  expect_handles("1 of 2 promised records, then close", 1, before);
}

/* A frame cut short while the peer stays: a receive with a timeout gives
 * SOCKPASS_ETIMEDOUT and hands nothing over, the bytes already read stay,
 * and when the rest comes the message arrives whole. */
static void truncated_then_silent(void **s) {
  peer_t p;
  WSAPROTOCOL_INFOW info[2];
  unsigned short port[2];
  sockpass_sock_t mine[2], got[2] = {NOT_SET, NOT_SET};
  char buf[16];
  size_t n = 2, len = sizeof buf, flen;
  int i, before = sp_count_fds();
  (void)s;
  peer_open(&p);
  for (i = 0; i < 2; i++)
    mine[i] = dup_for(self_pid(), &info[i], &port[i]);
  flen = frame_data(wbuf, self_pid(), info, 2, "late", 4);
  raw_write(&p, wbuf, HDR + REC); /* the header and the first record */
  assert_sp(sockpass_set_timeout(p.c, 200), 0);
  expect_error(p.c, SOCKPASS_ETIMEDOUT);
  assert_sp(sockpass_set_timeout(p.c, SOCKPASS_NONBLOCK), 0);
  expect_error(p.c, SOCKPASS_EAGAIN);
  assert_sp(sockpass_set_timeout(p.c, WAIT_MS), 0);
  raw_write(&p, wbuf + HDR + REC, flen - HDR - REC);
  assert_sp(sockpass_recv(p.c, got, &n, buf, &len), 0);
  assert_int_equal(n, 2);
  assert_int_equal(len, 4);
  assert_memory_equal(buf, "late", 4);
  for (i = 0; i < 2; i++) {
    assert_int_equal(sp_sock_port(got[i]), port[i]);
    closesocket(got[i]);
  }
  peer_close(&p);
  for (i = 0; i < 2; i++)
    closesocket(mine[i]);
  expect_handles("1 of 2 records, silence, then the rest", 1, before);
}

/* A short message followed by whole frames: the reader does not use pipe
 * message boundaries (docs/protocol.md), so the first bytes of the next
 * frame complete the short one, and the bytes left of it are no header.
 * The reader checks every frame it has read before it delivers any: the
 * channel is poisoned at once, and neither message comes out. */
static void truncated_then_more(void **s) {
  peer_t p;
  hdr_t h = hdr_data(0, 0, 5);
  int before = sp_count_fds();
  (void)s;
  peer_open(&p);
  hdr_put(wbuf, &h);
  raw_write(&p, wbuf, HDR); /* promises 5 bytes, brings none */
  raw_text(&p, "hello");
  raw_text(&p, "after");
  expect_poisoned(&p);
  peer_close(&p);
  expect_handles("short message, then whole frames", 1, before);
}

/* The same in the peer's favour: a frame written in two messages, the
 * header alone and then its record and data, arrives whole. */
static void frame_in_two_messages(void **s) {
  peer_t p;
  WSAPROTOCOL_INFOW info;
  unsigned short port;
  sockpass_sock_t mine, got;
  size_t len;
  int before = sp_count_fds();
  (void)s;
  peer_open(&p);
  mine = dup_for(self_pid(), &info, &port);
  len = frame_data(wbuf, self_pid(), &info, 1, "split", 5);
  raw_write(&p, wbuf, HDR);
  raw_write(&p, wbuf + HDR, len - HDR);
  raw_text(&p, "after");
  got = expect_socket(p.c, port, "split");
  closesocket(got);
  expect_text(p.c, "after");
  peer_close(&p);
  closesocket(mine);
  expect_handles("one frame in two messages", 1, before);
}

/* ---- Replayed records ---- */

/* One record duplicated for this process, sent in two DATA frames while
 * the first socket received is still open. Under Wine the second claim of
 * the record returns the same handle value again (measured): the library
 * cannot tell, and hands the same socket over a second time. What it must
 * not do is create a handle or hand over anything but that live socket. */
static void replayed_record_while_open(void **s) {
  peer_t p;
  WSAPROTOCOL_INFOW info;
  unsigned short port;
  sockpass_sock_t mine, first, second[2] = {NOT_SET, NOT_SET};
  char buf[16];
  size_t n = 2, len = sizeof buf, flen;
  int before = sp_count_fds(), mid, rc;
  (void)s;
  peer_open(&p);
  mine = dup_for(self_pid(), &info, &port);
  flen = frame_data(wbuf, self_pid(), &info, 1, "once", 4);
  raw_write(&p, wbuf, flen);
  raw_write(&p, wbuf, flen);
  raw_text(&p, "after");
  first = expect_socket(p.c, port, "once");
  mid = sp_count_fds();
  rc = sockpass_recv(p.c, second, &n, buf, &len);
  assert_int_equal(sp_count_fds(), mid); /* the replay made no handle */
  if (rc == 0) {
    assert_int_equal(n, 1);
    assert_true(second[0] == first);
    assert_int_equal(sp_sock_port(second[0]), port);
    print_message("hostile: replayed record, first still open: the same socket again (%llx)\n",
                  (unsigned long long)first);
  } else {
    assert_int_equal(n, 0);
    print_message("hostile: replayed record, first still open: %s\n", sockpass_err_name(rc));
  }
  expect_text(p.c, "after");
  closesocket(first);
  peer_close(&p);
  closesocket(mine);
  expect_handles("replayed record, first still open", 1, before);
}

/* The replay after the first socket was closed: the record names a handle
 * that is gone (or, worse, reused). The second receive must fail and hand
 * nothing over: Wine's WSASocketW returns the dead value, and the library
 * must see that it is not a live socket. */
static void replayed_record_after_close(void **s) {
  peer_t p;
  WSAPROTOCOL_INFOW info;
  unsigned short port;
  sockpass_sock_t mine, first;
  size_t flen;
  int before = sp_count_fds();
  (void)s;
  peer_open(&p);
  mine = dup_for(self_pid(), &info, &port);
  flen = frame_data(wbuf, self_pid(), &info, 1, "once", 4);
  raw_write(&p, wbuf, flen);
  raw_write(&p, wbuf, flen);
  raw_text(&p, "after");
  first = expect_socket(p.c, port, "once");
  closesocket(first);
  expect_error(p.c, SOCKPASS_EPROTO);
  expect_text(p.c, "after");
  peer_close(&p);
  closesocket(mine);
  expect_handles("replayed record, first closed", 1, before);
}

/* ---- Records for another process ---- */

/* The child: counts itself (the harness), says it is ready, claims the
 * record it is given as a payload and checks it names the socket on the
 * port given with it. */
static int claim_forwarded(sockpass_chan_t *c) {
  unsigned char buf[REC + 2];
  WSAPROTOCOL_INFOW info;
  unsigned short port;
  size_t n = 0, len = sizeof buf;
  SOCKET s;
  sockpass_set_timeout(c, sp_scale_ms(20000));
  SP_CHECK_RC(sockpass_send(c, NULL, 0, "ready", 5), 0);
  SP_CHECK_RC(sockpass_recv(c, NULL, &n, buf, &len), 0);
  SP_CHECK(len == sizeof buf);
  memcpy(&info, buf, REC);
  memcpy(&port, buf + REC, 2);
  s = WSASocketW(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, &info, 0,
                 WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
  SP_CHECK(s != INVALID_SOCKET);
  SP_CHECK(sp_sock_port(s) == port);
  closesocket(s);
  SP_CHECK_RC(sockpass_send(c, NULL, 0, "ok", 2), 0);
  return 0;
}

/* Read the DISCARD the library sent back and check it carries rec for pid. */
static void expect_discard(peer_t *p, uint32_t pid, const WSAPROTOCOL_INFOW *rec) {
  hdr_t h;
  assert_int_equal(raw_read(p, WAIT_MS), HDR + REC);
  h = hdr_get(rbuf);
  assert_int_equal(h.magic, MAGIC);
  assert_int_equal(h.type, T_DISCARD);
  assert_int_equal(h.pid, pid);
  assert_int_equal(h.nsocks, 1);
  assert_int_equal(h.rec_size, REC);
  assert_int_equal(h.payload, 0);
  assert_memory_equal(rbuf + HDR, rec, REC);
}

/* A record duplicated for a child process, in a frame naming the child:
 * SOCKPASS_EPROTO, no handle here, the record goes back in a DISCARD (whose
 * target, the child, can claim it: the test forwards it), and the channel
 * carries the next message. */
static void record_for_another_process(void **s) {
  sockpass_chan_t *a, *b;
  sockpass_peer_t who;
  sp_child_t *child;
  WSAPROTOCOL_INFOW info;
  unsigned char fwd[REC + 2];
  unsigned short port;
  sockpass_sock_t mine;
  peer_t p;
  char buf[8];
  size_t n = 0, len = sizeof buf;
  int before = sp_count_fds(), mid;
  uint32_t child_pid;
  (void)s;
  assert_sp(sockpass_pair(&a, &b), 0);
  child = sp_child_start("claim_forwarded", b);
  sockpass_close(b);
  assert_non_null(child);
  sockpass_set_timeout(a, sp_scale_ms(20000));
  assert_sp(sockpass_recv(a, NULL, &n, buf, &len), 0); /* "ready" */
  assert_sp(sockpass_peer(a, &who), 0);
  assert_true(who.pid > 0 && (uint32_t)who.pid != self_pid());
  child_pid = (uint32_t)who.pid;

  peer_open(&p);
  mine = dup_for(child_pid, &info, &port);
  raw_write(&p, wbuf, frame_data(wbuf, child_pid, &info, 1, "foreign", 7));
  raw_text(&p, "after");
  mid = sp_count_fds();
  expect_error(p.c, SOCKPASS_EPROTO);
  assert_int_equal(sp_count_fds(), mid);
  expect_discard(&p, child_pid, &info);
  expect_text(p.c, "after");
  peer_close(&p);
  closesocket(mine);

  memcpy(fwd, &info, REC);
  memcpy(fwd + REC, &port, 2);
  assert_sp(sockpass_send(a, NULL, 0, fwd, sizeof fwd), 0);
  n = 0;
  len = sizeof buf;
  assert_sp(sockpass_recv(a, NULL, &n, buf, &len), 0);
  assert_int_equal(len, 2);
  assert_memory_equal(buf, "ok", 2);
  sockpass_close(a);
  assert_int_equal(sp_child_wait(child), 0);
  expect_handles("record for another process (a child)", 1, before);
}

/* A record duplicated for this process in a frame naming another pid: the
 * library believes the frame (it must not claim records addressed to other
 * processes: under Wine such a record is a handle value that means
 * something else here), answers SOCKPASS_EPROTO and bounces the record.
 * The handle stays in this process until someone claims it, which only the
 * peer knows to do: here the peer reads the DISCARD and claims it. */
static void record_for_self_named_other(void **s) {
  peer_t p;
  WSAPROTOCOL_INFOW info;
  unsigned short port;
  sockpass_sock_t mine;
  uint32_t liar = self_pid() ^ 0x40000000u;
  int before = sp_count_fds(), mid;
  (void)s;
  peer_open(&p);
  mine = dup_for(self_pid(), &info, &port);
  raw_write(&p, wbuf, frame_data(wbuf, liar, &info, 1, "lie", 3));
  raw_text(&p, "after");
  mid = sp_count_fds();
  expect_error(p.c, SOCKPASS_EPROTO);
  assert_int_equal(sp_count_fds(), mid); /* nothing claimed, nothing made */
  expect_discard(&p, liar, &info);
  expect_text(p.c, "after");
  claim_and_close((const WSAPROTOCOL_INFOW *)(rbuf + HDR));
  peer_close(&p);
  closesocket(mine);
  expect_handles("record for this process, frame names another", 1, before);
}

/* ---- Records of garbage ---- */

/* A valid DATA header, then recs records; record k is garbage when bad[k],
 * else a genuine record of a fresh socket duplicated for this process. */
static void garbage_records(peer_t *p, const int *bad, uint32_t recs, sockpass_sock_t *mine) {
  WSAPROTOCOL_INFOW info;
  unsigned short port;
  hdr_t h = hdr_data(self_pid(), recs, 4);
  uint32_t k;
  hdr_put(wbuf, &h);
  for (k = 0; k < recs; k++) {
    mine[k] = INVALID_SOCKET;
    if (bad[k]) {
      WSAPROTOCOL_INFOW g;
      fill_random(wbuf + HDR + k * REC, REC, 0x1234567u + k);
      memcpy(&g, wbuf + HDR + k * REC, REC);
      /* Not Wine's duplicate marker, not a protocol Winsock knows. */
      assert_true(g.dwServiceFlags4 != 0xff00ff00u);
    } else {
      mine[k] = dup_for(self_pid(), &info, &port);
      memcpy(wbuf + HDR + k * REC, &info, REC);
    }
  }
  memcpy(wbuf + HDR + recs * REC, "junk", 4);
  raw_write(p, wbuf, h.total);
}

/* Random records: an error, nothing handed over, the genuine records of
 * the same frame claimed and closed (all or nothing), the frame consumed
 * and the channel carrying the next message. want is the error, or 0 for
 * any error. */
static void garbage_cases(int want) {
  static const int shapes[][3] = {{1, 0, 0}, {0, 1, 0}, {1, 0, 0}, {0, 0, 1}};
  static const uint32_t counts[] = {1, 2, 2, 3};
  int i, before = sp_count_fds();
  for (i = 0; i < 4; i++) {
    sockpass_sock_t mine[3], got[3] = {NOT_SET, NOT_SET, NOT_SET};
    char buf[16];
    size_t n = 3, len = sizeof buf;
    peer_t p;
    uint32_t k;
    int b = sp_count_fds(), a, rc;
    peer_open(&p);
    garbage_records(&p, shapes[i], counts[i], mine);
    raw_text(&p, "after");
    rc = sockpass_recv(p.c, got, &n, buf, &len);
    if (want != 0)
      assert_sp(rc, want);
    else if (rc >= 0 || rc == SOCKPASS_ETIMEDOUT || rc == SOCKPASS_EOF)
      fail_msg("garbage record shape %d: %s", i, sockpass_err_name(rc));
    if (i == 0)
      print_message("hostile: a garbage record gives %s\n", sockpass_err_name(rc));
    assert_int_equal(n, 0);
    assert_int_equal(len, 0);
    for (k = 0; k < 3; k++)
      assert_true(got[k] == NOT_SET || got[k] == INVALID_SOCKET);
    expect_text(p.c, "after");
    peer_close(&p);
    for (k = 0; k < counts[i]; k++)
      if (mine[k] != INVALID_SOCKET)
        closesocket(mine[k]);
    a = sp_count_fds();
    if (a != b)
      fail_msg("garbage record shape %d: %d handles before, %d after", i, b, a);
  }
  expect_handles("garbage records (1 of 1, 2nd of 2, 1st of 2, 3rd of 3)", 4, before);
}

static void garbage_record(void **s) {
  (void)s;
  garbage_cases(SOCKPASS_EPROTO);
}

/* A record that describes a protocol (AF_INET, UDP) instead of naming a
 * duplicate: WSASocketW makes a new socket of it, and the library cannot
 * tell (measured under Wine). It hands over a fresh, unbound socket that
 * the application owns; nothing leaks. */
static void protocol_record(void **s) {
  peer_t p;
  WSAPROTOCOL_INFOW info;
  sockpass_sock_t got[2] = {NOT_SET, NOT_SET};
  struct sockaddr_in sa;
  int sl = (int)sizeof sa, before = sp_count_fds(), rc;
  char buf[16];
  size_t n = 2, len = sizeof buf;
  (void)s;
  memset(&info, 0, sizeof info);
  info.iAddressFamily = AF_INET;
  info.iSocketType = SOCK_DGRAM;
  info.iProtocol = IPPROTO_UDP;
  info.iVersion = 2;
  peer_open(&p);
  raw_write(&p, wbuf, frame_data(wbuf, self_pid(), &info, 1, "proto", 5));
  raw_text(&p, "after");
  rc = sockpass_recv(p.c, got, &n, buf, &len);
  if (rc == 0) {
    assert_int_equal(n, 1);
    assert_int_equal(getsockname(got[0], (struct sockaddr *)&sa, &sl), SOCKET_ERROR);
    print_message("hostile: protocol record: a new, unbound socket handed over\n");
    closesocket(got[0]);
  } else {
    assert_int_equal(n, 0);
    print_message("hostile: protocol record: %s\n", sockpass_err_name(rc));
  }
  expect_text(p.c, "after");
  peer_close(&p);
  expect_handles("protocol description as a record", 1, before);
}

/* A forged record: Wine's duplicate marker with the value of a handle
 * this process owns (an event). Under Wine WSASocketW returns whatever
 * value such a record names; the library must not trust it. */
static void forge(WSAPROTOCOL_INFOW *info, HANDLE target) {
  unsigned short port;
  sockpass_sock_t mine = dup_for(self_pid(), info, &port);
  claim_and_close(info); /* the genuine duplicate goes; its layout stays */
  closesocket(mine);
  /* The layout Wine uses: the handle in dwServiceFlags3, a marker in 4. */
  assert_int_equal(info->dwServiceFlags4, 0xff00ff00u);
  info->dwServiceFlags3 = (DWORD)(ULONG_PTR)target;
}

/* In a DATA frame: the library must not hand the event over as a socket. */
static void forged_record_data(void **s) {
  peer_t p;
  WSAPROTOCOL_INFOW info;
  HANDLE ev;
  DWORD fl;
  int before = sp_count_fds();
  (void)s;
  ev = CreateEventW(NULL, TRUE, FALSE, NULL);
  assert_non_null(ev);
  peer_open(&p);
  forge(&info, ev);
  raw_write(&p, wbuf, frame_data(wbuf, self_pid(), &info, 1, "forged", 6));
  raw_text(&p, "after");
  expect_error(p.c, SOCKPASS_EPROTO);
  expect_text(p.c, "after");
  assert_true(GetHandleInformation(ev, &fl));
  peer_close(&p);
  CloseHandle(ev);
  expect_handles("forged record naming an event, DATA", 1, before);
}

/* In a DISCARD frame: the library must not close the event. */
static void forged_record_discard(void **s) {
  peer_t p;
  WSAPROTOCOL_INFOW info;
  HANDLE ev;
  DWORD fl;
  hdr_t h;
  int before = sp_count_fds();
  (void)s;
  ev = CreateEventW(NULL, TRUE, FALSE, NULL);
  assert_non_null(ev);
  peer_open(&p);
  forge(&info, ev);
  h = hdr_data(self_pid(), 1, 0);
  h.type = T_DISCARD;
  hdr_put(wbuf, &h);
  memcpy(wbuf + HDR, &info, REC);
  raw_write(&p, wbuf, HDR + REC);
  raw_text(&p, "after");
  expect_text(p.c, "after"); /* the DISCARD was acted on before it */
  assert_true(GetHandleInformation(ev, &fl));
  peer_close(&p);
  CloseHandle(ev);
  expect_handles("forged record naming an event, DISCARD", 1, before);
}

/* ---- More records than the room given ---- */

static void more_records_than_room(void **s) {
  peer_t p;
  WSAPROTOCOL_INFOW info[3];
  unsigned short port;
  sockpass_sock_t mine[3], got[1] = {NOT_SET};
  char buf[16];
  size_t n = 1, len = sizeof buf;
  int i, before = sp_count_fds();
  (void)s;
  peer_open(&p);
  for (i = 0; i < 3; i++)
    mine[i] = dup_for(self_pid(), &info[i], &port);
  raw_write(&p, wbuf, frame_data(wbuf, self_pid(), info, 3, "three", 5));
  raw_text(&p, "after");
  assert_sp(sockpass_recv(p.c, got, &n, buf, &len), SOCKPASS_ETRUNC);
  assert_int_equal(n, 0);
  assert_true(got[0] == NOT_SET);
  expect_text(p.c, "after");
  peer_close(&p);
  for (i = 0; i < 3; i++)
    closesocket(mine[i]);
  expect_handles("3 records for a room of 1", 1, before);
}

static const sp_role_t roles[] = {
    {"claim_forwarded", claim_forwarded},
};

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      SP_TEST(malformed_frames),
      SP_TEST(valid_then_malformed),
      SP_TEST(valid_and_garbage_in_one_message),
      SP_TEST(truncated_header_then_close),
      SP_TEST(truncated_half_header_then_close),
      SP_TEST(truncated_record_then_close),
      SP_TEST(truncated_then_silent),
      SP_TEST(truncated_then_more),
      SP_TEST(frame_in_two_messages),
      SP_TEST(replayed_record_while_open),
      SP_TEST(replayed_record_after_close),
      SP_TEST(record_for_another_process),
      SP_TEST(record_for_self_named_other),
      SP_TEST(garbage_record),
      SP_TEST(protocol_record),
      SP_TEST(forged_record_data),
      SP_TEST(forged_record_discard),
      SP_TEST(more_records_than_room),
  };
  return sp_test_main(argc, argv, "hostile", tests, sizeof tests / sizeof tests[0], roles,
                      sizeof roles / sizeof roles[0]);
}
