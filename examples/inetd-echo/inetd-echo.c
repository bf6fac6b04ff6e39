/* SPDX-License-Identifier: MIT */
/*
 * inetd-echo: a plain standard-input / standard-output program that serves a
 * TCP connection without knowing it: it copies every byte of stdin to stdout,
 * flushing at the end of each line, and exits 0 at end of input.
 *
 * It uses no sockets and no sockpass. Run it behind sockpass-run, which
 * accepts each connection and starts one inetd-echo with the connection as
 * its stdin and stdout:
 *
 *   sockpass-run --accept --listen 127.0.0.1:7000 -- inetd-echo
 *   nc 127.0.0.1 7000
 *
 * Any program written this way works; two details matter on Windows, where
 * stdin and stdout are then a socket: the C runtime must be in binary mode
 * (no "\r\n" translation), and output must be flushed before waiting for
 * more input. On POSIX both are no-ops, apart from the flush.
 */
#include <stdio.h>
#ifdef _WIN32
#include <fcntl.h>
#include <io.h>
#endif

int main(void) {
  int ch;
#ifdef _WIN32
  _setmode(_fileno(stdin), _O_BINARY);
  _setmode(_fileno(stdout), _O_BINARY);
#endif
  while ((ch = getchar()) != EOF) {
    if (putchar(ch) == EOF)
      return 1; /* the client has gone */
    if (ch == '\n' && fflush(stdout) != 0)
      return 1;
  }
  /* End of input: the client shut down its side. Flush a last partial line. */
  return fflush(stdout) == 0 && !ferror(stdin) ? 0 : 1;
}
