/* SPDX-License-Identifier: MIT */
/* The frame decoder of the Windows backend (src/frame.c) is portable C: its
 * answers are checked here on every OS, for good frames and for each way a
 * header can be wrong, so that a decoder bug fails natively too. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "frame.h"

#define REC 8u

static int decode(const sp_frame_t *f, size_t avail) {
  unsigned char buf[SP_FRAME_HDR_SIZE + 16 * REC + 64];
  sp_frame_t g;
  memset(buf, 0, sizeof buf);
  sp_frame_encode(buf, f);
  return sp_frame_decode(buf, avail, REC, &g);
}

static void good_frames_round_trip(void **s) {
  unsigned char buf[SP_FRAME_HDR_SIZE + 3 * REC + 5];
  sp_frame_t f, g;
  (void)s;
  sp_frame_data(&f, SP_FRAME_DATA, 42, 3, REC, 5);
  assert_int_equal(f.total, SP_FRAME_HDR_SIZE + 3 * REC + 5);
  memset(buf, 0, sizeof buf);
  sp_frame_encode(buf, &f);
  assert_int_equal(sp_frame_decode(buf, sizeof buf, REC, &g), SP_FRAME_OK);
  assert_memory_equal(&f, &g, sizeof f);
  /* Every shorter read waits for more. */
  assert_int_equal(sp_frame_decode(buf, sizeof buf - 1, REC, &g), SP_FRAME_MORE);
  assert_int_equal(sp_frame_decode(buf, SP_FRAME_HDR_SIZE - 1, REC, &g), SP_FRAME_MORE);
  assert_int_equal(sp_frame_decode(buf, 2, REC, &g), SP_FRAME_MORE);
  assert_int_equal(sp_frame_decode(buf, 0, REC, &g), SP_FRAME_MORE);
  sp_frame_control(&f, SP_FRAME_HELLO, 42, SP_FRAME_F_REQ);
  assert_int_equal(decode(&f, SP_FRAME_HDR_SIZE), SP_FRAME_OK);
  sp_frame_control(&f, SP_FRAME_BYE, 42, 0);
  assert_int_equal(decode(&f, SP_FRAME_HDR_SIZE), SP_FRAME_OK);
  sp_frame_data(&f, SP_FRAME_DATA, 42, SOCKPASS_MAX_SOCKS, REC, 0);
  assert_int_equal(decode(&f, SP_FRAME_HDR_SIZE), SP_FRAME_MORE); /* valid, not all there */
  sp_frame_data(&f, SP_FRAME_DISCARD, 42, 2, REC, 0);
  assert_int_equal(decode(&f, SP_FRAME_HDR_SIZE + 2 * REC), SP_FRAME_OK);
}

static void bad_headers_refused(void **s) {
  sp_frame_t f, g;
  const unsigned char junk[4] = {'S', 'X', 'P', 'K'};
  (void)s;
  /* A start that cannot become "SPPK" is refused at once. */
  assert_int_equal(sp_frame_decode(junk, 2, REC, &g), SP_FRAME_BAD);
  assert_int_equal(sp_frame_decode(junk, 4, REC, &g), SP_FRAME_BAD);
  sp_frame_data(&f, SP_FRAME_DATA, 42, 1, REC, 1);
  f.version = 2;
  assert_int_equal(decode(&f, SP_FRAME_HDR_SIZE + REC + 1), SP_FRAME_BAD);
  sp_frame_data(&f, SP_FRAME_DATA, 42, 1, REC, 1);
  f.reserved[0] = 1;
  assert_int_equal(decode(&f, SP_FRAME_HDR_SIZE + REC + 1), SP_FRAME_BAD);
  sp_frame_data(&f, SP_FRAME_DATA, 42, 1, REC, 1);
  f.reserved[1] = 1;
  assert_int_equal(decode(&f, SP_FRAME_HDR_SIZE + REC + 1), SP_FRAME_BAD);
  sp_frame_data(&f, SP_FRAME_DATA, 42, 1, REC, 1);
  f.total += 1; /* larger than its parts */
  assert_int_equal(decode(&f, SP_FRAME_HDR_SIZE + REC + 2), SP_FRAME_BAD);
  sp_frame_data(&f, SP_FRAME_DATA, 42, 1, REC, 1);
  f.total -= 1;
  assert_int_equal(decode(&f, SP_FRAME_HDR_SIZE + REC + 1), SP_FRAME_BAD);
  sp_frame_data(&f, SP_FRAME_DATA, 42, SOCKPASS_MAX_SOCKS + 1, REC, 0);
  assert_int_equal(decode(&f, SP_FRAME_HDR_SIZE), SP_FRAME_BAD);
  sp_frame_data(&f, SP_FRAME_DATA, 42, 0, REC, SOCKPASS_MAX_PAYLOAD + 1);
  assert_int_equal(decode(&f, SP_FRAME_HDR_SIZE), SP_FRAME_BAD);
  sp_frame_data(&f, SP_FRAME_DATA, 42, 0, REC, 0); /* carries nothing */
  assert_int_equal(decode(&f, SP_FRAME_HDR_SIZE), SP_FRAME_BAD);
  sp_frame_data(&f, SP_FRAME_DATA, 0, 1, REC, 1); /* sockets for nobody */
  f.pid = 0;
  assert_int_equal(decode(&f, SP_FRAME_HDR_SIZE + REC + 1), SP_FRAME_BAD);
  sp_frame_data(&f, SP_FRAME_DATA, 42, 1, REC + 1, 1); /* records of another size */
  assert_int_equal(decode(&f, SP_FRAME_HDR_SIZE + REC + 2), SP_FRAME_BAD);
  sp_frame_control(&f, SP_FRAME_HELLO, 42, 0x80);
  assert_int_equal(decode(&f, SP_FRAME_HDR_SIZE), SP_FRAME_BAD);
  sp_frame_control(&f, SP_FRAME_HELLO, 0, 0);
  assert_int_equal(decode(&f, SP_FRAME_HDR_SIZE), SP_FRAME_BAD);
  sp_frame_control(&f, 9, 42, 0);
  assert_int_equal(decode(&f, SP_FRAME_HDR_SIZE), SP_FRAME_BAD);
  sp_frame_data(&f, SP_FRAME_DISCARD, 42, 0, REC, 0);
  assert_int_equal(decode(&f, SP_FRAME_HDR_SIZE), SP_FRAME_BAD);
  /* A refused header leaves nothing behind in the output. */
  sp_frame_data(&f, SP_FRAME_DATA, 42, 1, REC, 1);
  f.reserved[1] = 7;
  {
    unsigned char buf[SP_FRAME_HDR_SIZE + REC + 1] = {0};
    sp_frame_t zero;
    memset(&zero, 0, sizeof zero);
    sp_frame_encode(buf, &f);
    assert_int_equal(sp_frame_decode(buf, sizeof buf, REC, &g), SP_FRAME_BAD);
    assert_memory_equal(&g, &zero, sizeof g);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(good_frames_round_trip),
      cmocka_unit_test(bad_headers_refused),
  };
  return cmocka_run_group_tests_name("frame", tests, NULL, NULL);
}
