/* SPDX-License-Identifier: MIT */
/* A program built against an installed sockpass_uv: one message with a
 * socket over a pair, both ends on a libuv loop. */
#include <sockpass_uv.h>

#include <stdio.h>
#include <string.h>

static int got = -1;

static void on_recv(sockpass_uv_chan_t *c, int status, sockpass_sock_t *socks, size_t n,
                    const void *data, size_t len) {
  size_t i;
  got = status == 0 && n == 1 && len == 9 && memcmp(data, "installed", 9) == 0;
  for (i = 0; i < n; i++)
    sockpass_close_sock(socks[i]);
  sockpass_uv_close(sockpass_uv_get_data(c), NULL);
  sockpass_uv_close(c, NULL);
}

int main(void) {
  uv_loop_t *loop = uv_default_loop();
  sockpass_chan_t *a, *b, *c, *d;
  sockpass_uv_chan_t *ua, *ub;
  /* The socket to send: one end of another pair's OS handle is not a
   * socket on Windows, so send a channel's own socket on POSIX only and a
   * fresh TCP socket elsewhere. */
  sockpass_sock_t s;
  int rc = sockpass_pair(&a, &b);
  if (rc == 0)
    rc = sockpass_pair(&c, &d);
  if (rc != 0) {
    fprintf(stderr, "uvapp: %s\n", sockpass_strerror(rc));
    return 1;
  }
#ifdef _WIN32
  s = WSASocketW(AF_INET, SOCK_STREAM, IPPROTO_TCP, NULL, 0, WSA_FLAG_OVERLAPPED);
#else
  s = sockpass_handle(c);
#endif
  if ((rc = sockpass_uv_open(loop, a, &ua)) != 0 || (rc = sockpass_uv_open(loop, b, &ub)) != 0 ||
      (rc = sockpass_uv_recv_start(ub, on_recv)) != 0 ||
      (rc = sockpass_uv_send(ua, &s, 1, "installed", 9, NULL, NULL)) != 0) {
    fprintf(stderr, "uvapp: %s\n", sockpass_strerror(rc));
    return 1;
  }
  sockpass_uv_set_data(ub, ua);
  uv_run(loop, UV_RUN_DEFAULT);
#ifdef _WIN32
  closesocket(s);
#endif
  sockpass_close(c);
  sockpass_close(d);
  if (got != 1) {
    fprintf(stderr, "uvapp: the message did not arrive whole\n");
    return 1;
  }
  printf("consumer: sockpass_uv %s works\n", sockpass_version_string());
  return 0;
}
