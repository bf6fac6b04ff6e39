/* SPDX-License-Identifier: MIT */
/* Wrapper of a "worker" snippet (scripts/check-snippets): it provides `rc`;
 * the snippet finds its inherited sockets and leaves the count in `n`. Run
 * by the document's starter snippet, or under sockpass-run with one
 * listener: passes when exactly that one listening socket arrived. */
#include <sockpass.h>

#include <stdio.h>
#include <sys/socket.h>

int main(void) {
  int rc = 0;
  {
    /* SNIPPET */
    if (rc != 0 || n != 1) {
      fprintf(stderr, "snippet worker: rc %d (%s), %zu sockets\n", rc, sockpass_strerror(rc),
              (size_t)n);
      return 1;
    }
  }
  sockpass_sock_t got;
  size_t one = 1;
  int listening = 0;
  socklen_t len = sizeof listening;
  /* Inherited sockets are returned again by later calls: check the first. */
  if (sockpass_inherited(&got, &one) != 0 || one != 1 ||
      getsockopt(got, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) != 0 || !listening) {
    fprintf(stderr, "snippet worker: the socket is not a listener\n");
    return 1;
  }
  return 0;
}
