/* SPDX-License-Identifier: MIT */
/* A program that has never heard of sockets: it writes "pid N" on standard
 * output, then copies standard input to standard output in upper case until
 * end of input. sockpass-run --accept gives it a connection as both.
 *   --ignore-term  (POSIX) ignore SIGTERM, so only SIGKILL ends it
 * On Windows it ignores Ctrl+C and Ctrl+Break, which reach every process of
 * a console: what ends it in the tests is sockpass-run stopping it. */
#ifdef _WIN32
#include <windows.h>
#else
#include <signal.h>
#include <unistd.h>
#endif
#include <stdio.h>
#include <string.h>

static void up(char *buf, size_t n) {
  size_t i;
  for (i = 0; i < n; i++)
    if (buf[i] >= 'a' && buf[i] <= 'z')
      buf[i] = (char)(buf[i] - 'a' + 'A');
}

#ifdef _WIN32
static BOOL WINAPI ignore_ctrl(DWORD type) {
  return type == CTRL_C_EVENT || type == CTRL_BREAK_EVENT;
}

static int put(HANDLE out, const char *buf, size_t n) {
  while (n > 0) {
    DWORD w = 0;
    if (!WriteFile(out, buf, (DWORD)n, &w, NULL) || w == 0)
      return -1;
    buf += w;
    n -= w;
  }
  return 0;
}

int main(void) {
  HANDLE in = GetStdHandle(STD_INPUT_HANDLE), out = GetStdHandle(STD_OUTPUT_HANDLE);
  char buf[4096];
  DWORD n;
  int len;
  SetConsoleCtrlHandler(ignore_ctrl, TRUE);
  len = snprintf(buf, sizeof buf, "pid %lu\n", (unsigned long)GetCurrentProcessId());
  if (put(out, buf, (size_t)len) != 0) {
    fprintf(stderr, "upper: WriteFile on standard output failed: %lu\n", GetLastError());
    return 1;
  }
  for (;;) {
    if (!ReadFile(in, buf, sizeof buf, &n, NULL)) {
      DWORD e = GetLastError();
      if (e == ERROR_BROKEN_PIPE || e == ERROR_NETNAME_DELETED)
        return 0; /* the peer reset the connection: as good as an end */
      fprintf(stderr, "upper: ReadFile on standard input failed: %lu\n", e);
      return 1;
    }
    if (n == 0)
      return 0;
    up(buf, n);
    if (put(out, buf, n) != 0) {
      fprintf(stderr, "upper: WriteFile on standard output failed: %lu\n", GetLastError());
      return 1;
    }
  }
}
#else
static int put(const char *buf, size_t n) {
  while (n > 0) {
    ssize_t w = write(1, buf, n);
    if (w <= 0)
      return -1;
    buf += w;
    n -= (size_t)w;
  }
  return 0;
}

int main(int argc, char **argv) {
  char buf[4096];
  int len;
  if (argc > 1 && strcmp(argv[1], "--ignore-term") == 0)
    signal(SIGTERM, SIG_IGN);
  signal(SIGPIPE, SIG_IGN);
  len = snprintf(buf, sizeof buf, "pid %ld\n", (long)getpid());
  if (put(buf, (size_t)len) != 0) {
    perror("upper: write");
    return 1;
  }
  for (;;) {
    ssize_t n = read(0, buf, sizeof buf);
    if (n == 0)
      return 0;
    if (n < 0) {
      perror("upper: read");
      return 1;
    }
    up(buf, (size_t)n);
    if (put(buf, (size_t)n) != 0) {
      perror("upper: write");
      return 1;
    }
  }
}
#endif
