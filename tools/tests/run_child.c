/* SPDX-License-Identifier: MIT */
/* The program sockpass-run starts in its listen mode, in the tests.
 *   run_child serve CODE NAME...  expects exactly the listeners named, in
 *     order; on each accepts one connection, reads a line and answers
 *     "NAME PID LINE"; exits with CODE
 *   run_child hold NAME           expects one listener so named, says
 *     "run_child: pid N holding" on stderr and waits to be stopped
 * Failures go to stderr, with exit codes 90 to 99. */
#include <sockpass.h>

#ifdef _WIN32
#include <windows.h>
#else
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32
static BOOL WINAPI ignore_ctrl(DWORD type) {
  return type == CTRL_C_EVENT || type == CTRL_BREAK_EVENT;
}
static long my_pid(void) { return (long)GetCurrentProcessId(); }
static void pause_ms(int ms) { Sleep((DWORD)ms); }
#else
static long my_pid(void) { return (long)getpid(); }
static void pause_ms(int ms) { usleep((useconds_t)ms * 1000u); }
#endif

static int check_names(size_t n, int want, char **names) {
  size_t i;
  if (n != (size_t)want) {
    fprintf(stderr, "run_child: %lu sockets inherited, %d expected\n", (unsigned long)n, want);
    return 91;
  }
  for (i = 0; i < n; i++) {
    const char *got = sockpass_inherited_name(i);
    if (got == NULL || strcmp(got, names[i]) != 0) {
      fprintf(stderr, "run_child: socket %lu is named '%s', '%s' expected\n", (unsigned long)i,
              got ? got : "(null)", names[i]);
      return 92;
    }
  }
  return 0;
}

static int serve_one(sockpass_sock_t l, const char *name) {
  char line[256], reply[400];
  size_t n = 0;
  int len;
  sockpass_sock_t c = accept(l, NULL, NULL);
  if (c == SOCKPASS_INVALID_SOCK)
    return -1;
  while (n + 1 < sizeof line) {
    char ch;
    if (recv(c, &ch, 1, 0) != 1)
      break;
    if (ch == '\n')
      break;
    line[n++] = ch;
  }
  line[n] = '\0';
  len = snprintf(reply, sizeof reply, "%s %ld %s\n", name, my_pid(), line);
  if (send(c, reply, len, 0) != len) {
    sockpass_close_sock(c);
    return -1;
  }
  sockpass_close_sock(c);
  return 0;
}

int main(int argc, char **argv) {
  sockpass_sock_t socks[16];
  size_t n = 16, i;
  int rc, t;
  setvbuf(stderr, NULL, _IONBF, 0);
#ifdef _WIN32
  SetConsoleCtrlHandler(ignore_ctrl, TRUE);
#endif
  if (argc < 2)
    return 99;
  rc = sockpass_inherited(socks, &n);
  if (rc < 0) {
    fprintf(stderr, "run_child: sockpass_inherited: %s\n", sockpass_strerror(rc));
    return 90;
  }
  if (strcmp(argv[1], "serve") == 0 && argc >= 3) {
    if ((rc = check_names(n, argc - 3, argv + 3)) != 0)
      return rc;
    fprintf(stderr, "run_child: pid %ld ready with %lu sockets\n", my_pid(), (unsigned long)n);
    for (i = 0; i < n; i++)
      if (serve_one(socks[i], argv[3 + i]) != 0) {
        fprintf(stderr, "run_child: serving on socket %lu failed\n", (unsigned long)i);
        return 93;
      }
    return atoi(argv[2]);
  }
  if (strcmp(argv[1], "hold") == 0 && argc == 3) {
    if ((rc = check_names(n, 1, argv + 2)) != 0)
      return rc;
    fprintf(stderr, "run_child: pid %ld holding\n", my_pid());
    fflush(stderr);
    for (t = 0; t < 1200; t++) /* 120 s at most: a test bound, not a feature */
      pause_ms(100);
    return 94;
  }
  return 99;
}
