/* SPDX-License-Identifier: MIT */
/* Soak: MESSAGES messages (default 1,000,000), each with a freshly made
 * socket, from one process to another over a channel pair. Both sides print
 * their open descriptor count and resident memory after the first message
 * and every INTERVAL messages (default 100,000), and compare the end with the
 * mark at INTERVAL (the first one taken in steady state: by then stdio and
 * the allocator have made what they keep). Exits non-zero if either count
 * grew after that mark on either side, or a message came wrong.
 *
 *   sockpass_soak [MESSAGES [INTERVAL]]
 *
 * POSIX only (fork); not a ctest test: it runs for a while. */
#include "harness.h" /* sp_count_fds */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>


static long rss_kib(void) {
  long pages = -1, size;
  FILE *f = fopen("/proc/self/statm", "r");
  if (f == NULL)
    return -1;
  if (fscanf(f, "%ld %ld", &size, &pages) != 2)
    pages = -1;
  fclose(f);
  return pages < 0 ? -1 : pages * (sysconf(_SC_PAGESIZE) / 1024);
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
  const char *who;
  int fds0;
  long rss0;
  double t0;
} mark_t;

static void mark(mark_t *m, unsigned long done, unsigned long every) {
  int fds = sp_count_fds();
  long rss = rss_kib();
  if (done == 1)
    m->t0 = now_s();
  if (done == every) {
    m->fds0 = fds;
    m->rss0 = rss;
  }
  printf("%-8s %9lu messages  fds %d  rss %ld KiB  %.1f s\n", m->who, done, fds, rss,
         now_s() - m->t0);
  fflush(stdout);
}

/* Resident memory may read this much above the mark without a leak: a
 * kernel before 6.2 adds each thread's page counts to the process's only
 * every 64 faults, so /proc/self/statm can lag by up to 64 pages per thread
 * (256 KiB with 4 KiB pages). A leak of even 4 bytes a message exceeds it
 * long before the end of the default run. */
#define RSS_SLACK_KIB 512

/* 0 when the end equals the first mark (memory within RSS_SLACK_KIB). */
static int verdict(const mark_t *m) {
  int fds = sp_count_fds();
  long rss = rss_kib();
  int ok = fds == m->fds0 && rss <= m->rss0 + RSS_SLACK_KIB;
  printf("%-8s fds %d -> %d, rss %ld -> %ld KiB: %s\n", m->who, m->fds0, fds, m->rss0, rss,
         ok ? "flat" : "GREW");
  fflush(stdout);
  return ok ? 0 : 1;
}

/* Make now the descriptor a channel keeps for waiting (made on its first
 * wait or cancel), so that a run too short to ever wait counts the same; and
 * go once through a receive that finds nothing, so that the stack it uses is
 * in the first mark (the sender receives only at the very end). */
static void settle(sockpass_chan_t *c) {
  char byte;
  size_t n = 0, len = 1;
  sockpass_cancel(c);
  sockpass_cancel_clear(c);
  sockpass_set_timeout(c, SOCKPASS_NONBLOCK);
  (void)sockpass_recv(c, NULL, &n, &byte, &len);
  sockpass_set_timeout(c, SOCKPASS_WAIT_FOREVER);
}

static int sender(sockpass_chan_t *c, unsigned long total, unsigned long every) {
  mark_t m = {"sender", -1, -1, 0};
  unsigned long i;
  int rc;
  char ack;
  size_t n = 0, len = 1;
  for (i = 0; i < total; i++) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
      perror("socket");
      return 1;
    }
    rc = sockpass_send(c, &s, 1, &i, sizeof i);
    close(s);
    if (rc != 0) {
      fprintf(stderr, "sender: message %lu: %s\n", i, sockpass_strerror(rc));
      return 1;
    }
    if (i == 0 || (i + 1) % every == 0)
      mark(&m, i + 1, every);
  }
  rc = sockpass_recv(c, NULL, &n, &ack, &len); /* the receiver is done */
  if (rc != 0) {
    fprintf(stderr, "sender: final ack: %s\n", sockpass_strerror(rc));
    return 1;
  }
  return verdict(&m);
}

static int receiver(sockpass_chan_t *c, unsigned long total, unsigned long every) {
  mark_t m = {"receiver", -1, -1, 0};
  unsigned long i, got;
  int s, rc, type;
  socklen_t tl;
  for (i = 0; i < total; i++) {
    size_t n = 1, len = sizeof got;
    rc = sockpass_recv(c, &s, &n, &got, &len);
    if (rc != 0 || n != 1 || len != sizeof got || got != i) {
      fprintf(stderr, "receiver: message %lu: %s (n %zu, len %zu)\n", i, sockpass_strerror(rc),
              n, len);
      return 1;
    }
    tl = sizeof type;
    if (getsockopt(s, SOL_SOCKET, SO_TYPE, &type, &tl) != 0 || type != SOCK_DGRAM) {
      fprintf(stderr, "receiver: message %lu: not the socket sent\n", i);
      return 1;
    }
    close(s);
    if (i == 0 || (i + 1) % every == 0)
      mark(&m, i + 1, every);
  }
  rc = verdict(&m);
  if (sockpass_send(c, NULL, 0, "k", 1) != 0)
    return 1;
  return rc;
}

int main(int argc, char **argv) {
  unsigned long total = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000UL;
  unsigned long every = argc > 2 ? strtoul(argv[2], NULL, 10) : 100000UL;
  sockpass_chan_t *a, *b;
  pid_t pid;
  int rc, status = 0;
  double t0 = now_s();
  if (every > total)
    every = total;
  if (total == 0 || every == 0) {
    fprintf(stderr, "usage: sockpass_soak [MESSAGES [INTERVAL]]\n");
    return 2;
  }
  if ((rc = sockpass_pair(&a, &b)) != 0) {
    fprintf(stderr, "sockpass_pair: %s\n", sockpass_strerror(rc));
    return 1;
  }
  /* Before the fork: nothing has been sent yet, and both sides inherit it. */
  settle(a);
  settle(b);
  fflush(stdout);
  pid = fork();
  if (pid < 0) {
    perror("fork");
    return 1;
  }
  if (pid == 0) {
    sockpass_close(a);
    rc = receiver(b, total, every);
    sockpass_close(b);
    _exit(rc);
  }
  sockpass_close(b);
  rc = sender(a, total, every);
  sockpass_close(a);
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    rc = 1;
  printf("soak: %lu messages with a socket each in %.1f s: %s\n", total, now_s() - t0,
         rc == 0 ? "PASS" : "FAIL");
  return rc;
}
