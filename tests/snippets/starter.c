/* SPDX-License-Identifier: MIT */
/* Wrapper of a "starter" snippet (scripts/check-snippets): it provides a
 * listening socket `listener`, `rc` and `code`; the snippet starts ./worker
 * (the same document's worker snippet) with it and waits for it. Passes when
 * the spawn worked and the worker exited 0, i.e. it found the listener. */
#include <sockpass.h>

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
  struct sockaddr_in a;
  sockpass_sock_t listener = socket(AF_INET, SOCK_STREAM, 0);
  int rc, code = -1;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(0x7f000001);
  if (listener < 0 || bind(listener, (struct sockaddr *)&a, sizeof a) != 0 ||
      listen(listener, 1) != 0) {
    perror("snippet starter: listener");
    return 1;
  }
  {
    /* SNIPPET */
  }
  close(listener);
  if (rc != 0 || code != 0) {
    fprintf(stderr, "snippet starter: rc %d (%s), worker exit %d\n", rc, sockpass_strerror(rc),
            code);
    return 1;
  }
  return 0;
}
