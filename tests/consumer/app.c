/* SPDX-License-Identifier: MIT */
/* A program built the way a user builds against an installed sockpass. */
#include <sockpass.h>

#include <stdio.h>
#include <string.h>

int main(void) {
  sockpass_chan_t *a, *b;
  sockpass_sock_t socks[1];
  char buf[16];
  size_t n = 1, len = sizeof buf;
  int rc = sockpass_pair(&a, &b);
  if (rc == 0)
    rc = sockpass_send(a, NULL, 0, "installed", 9);
  if (rc == 0)
    rc = sockpass_recv(b, socks, &n, buf, &len);
  if (rc != 0 || len != 9 || memcmp(buf, "installed", 9) != 0) {
    fprintf(stderr, "consumer: %s\n", sockpass_strerror(rc));
    return 1;
  }
  printf("consumer: sockpass %s works\n", sockpass_version_string());
  sockpass_close(a);
  sockpass_close(b);
  return 0;
}
