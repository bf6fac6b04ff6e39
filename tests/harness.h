/* SPDX-License-Identifier: MIT */
/*
 * Test harness shared by every test binary. A scenario has two roles, A and
 * B, that talk over a channel pair. It runs in two shapes:
 *   - threads: A in the test's thread, B in a second thread of this process;
 *   - processes: B in a copy of this binary started as "--child ROLE HANDLE",
 *     which opens the inherited channel end with sockpass_open.
 * Roles return 0 on success and report failures through SP_CHECK, which
 * prints the place and returns 1: safe in any thread and in a child.
 */
#ifndef SOCKPASS_TEST_HARNESS_H
#define SOCKPASS_TEST_HARNESS_H

#include <sockpass.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <cmocka.h>

#ifndef _WIN32
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

typedef int (*sp_role_fn)(sockpass_chan_t *chan);

typedef struct {
  const char *name;
  sp_role_fn fn;
} sp_role_t;

#define SP_CHECK(cond)                                                         \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
      return 1;                                                                \
    }                                                                          \
  } while (0)

/* expr must return want (a SOCKPASS_* code or 0). */
#define SP_CHECK_RC(expr, want)                                                \
  do {                                                                         \
    int sp_rc_ = (expr);                                                       \
    if (sp_rc_ != (want)) {                                                    \
      fprintf(stderr, "%s:%d: %s returned %d (%s), expected %s\n", __FILE__,   \
              __LINE__, #expr, sp_rc_, sockpass_err_name(sp_rc_), #want);      \
      return 1;                                                                \
    }                                                                          \
  } while (0)

/* cmocka assertion that a sockpass call returned want, naming both codes. */
#define assert_sp(expr, want)                                                  \
  do {                                                                         \
    int sp_rc_ = (expr);                                                       \
    if (sp_rc_ != (want))                                                      \
      fail_msg("%s returned %d (%s), expected %s", #expr, sp_rc_,              \
               sockpass_err_name(sp_rc_), #want);                              \
  } while (0)

/* The entry point of every test binary: runs the group, or a child role. */
int sp_test_main(int argc, char **argv, const char *group, const struct CMUnitTest *tests,
                 size_t ntests, const sp_role_t *roles, size_t nroles);

/* Run A and B over a fresh pair, in one shape. Fails the current test if a
 * role fails, the child exits non-zero, or the child outlives 60 s. */
void sp_run_threads(sp_role_fn a, sp_role_fn b);
void sp_run_process(sp_role_fn a, const char *b_role);
/* A role that gave its channel to something that closes it (sockpass_uv)
 * sets this to 1, so that the harness does not close it again. */
extern int sp_chan_handed_over;

/* Start this binary as "--child ROLE HANDLE" with the channel end inherited
 * (the caller still closes its own copy) and wait for it. */
typedef struct sp_child sp_child_t;
sp_child_t *sp_child_start(const char *role, sockpass_chan_t *end);
int sp_child_wait(sp_child_t *child); /* exit code; -1 on timeout (child killed) */
#ifdef _WIN32
/* Start this binary with the arguments args, inheriting only inherit (or no
 * handle at all when it is NULL); wait for it with sp_child_wait. */
sp_child_t *sp_spawn_self(const char *args, HANDLE inherit);
#endif

/* Threads. */
typedef struct sp_thread sp_thread_t;
sp_thread_t *sp_thread_start(sp_role_fn fn, sockpass_chan_t *chan);
int sp_thread_join(sp_thread_t *t); /* the role's result */

/* Open descriptors (POSIX) or handles (Windows) of this process. */
int sp_count_fds(void);
/* cmocka setup/teardown: the count must be the same after the test. */
int sp_fd_before(void **state);
int sp_fd_after(void **state);
#define SP_TEST(fn) cmocka_unit_test_setup_teardown(fn, sp_fd_before, sp_fd_after)

/* Loopback TCP helpers (127.0.0.1), bounded by a 10 s timeout on reads. */
void sp_net_init(void);
sockpass_sock_t sp_tcp_listener(unsigned short *port);
sockpass_sock_t sp_tcp_connect(unsigned short port);
int sp_tcp_pair(sockpass_sock_t *client, sockpass_sock_t *server);
sockpass_sock_t sp_udp_socket(unsigned short *port);
unsigned short sp_sock_port(sockpass_sock_t s);
int sp_write_all(sockpass_sock_t s, const void *buf, size_t n);
int sp_read_n(sockpass_sock_t s, void *buf, size_t n); /* 0 when n bytes came */
void sp_sleep_ms(int ms);
/* A test's time limit for this stage: ms times SOCKPASS_TEST_SCALE (an
 * integer 1..100, default 1; scripts/test raises it under valgrind and the
 * sanitizers). Use it for every limit a slow machine could overrun. */
int sp_scale_ms(int ms);

/* Little-endian 32-bit values in raw bytes (message contents, frames). */
void sp_put32(unsigned char *p, uint32_t v);
uint32_t sp_get32(const unsigned char *p);
#ifndef _WIN32
/* A plain recvmsg, read the way a peer that is not sockpass reads: returns
 * the byte count (-1 on error); the descriptors of every SCM_RIGHTS go to
 * fds (room for room of them), and *nfds counts them all. */
ssize_t sp_raw_recv(int sock, void *buf, size_t len, int *fds, size_t room, size_t *nfds);
/* CMSG_NXTHDR(m, cm). One place for it: musl's expansion compares a signed
 * with an unsigned value, a -Wsign-compare error in every caller. */
struct cmsghdr *sp_cmsg_next(struct msghdr *m, struct cmsghdr *cm);
#endif
long sp_getpid(void);

/* The calling thread's id, for sp_wait_blocked. */
long sp_thread_id(void);
/* Wait, boundedly, until thread tid of this process is blocked in its wait:
 * on Linux asleep inside poll (/proc/self/task/TID/stat and syscall); on
 * Windows the call has not returned for 200 ms. *returned is the flag the
 * thread sets (__atomic_store_n) once its call is over. 1 when blocked, 0 when not. */
int sp_wait_blocked(long tid, const int *returned);

/* Monotonic time in microseconds. */
long long sp_now_us(void);
/* How many times slower than a plain native run this one may be:
 * SOCKPASS_TEST_SLOW (scripts/test sets it for valgrind), default 1. */
int sp_slow(void);
/* Whether a timed wait of timeout_ms that took took_us lasted at least the
 * timeout (less a clock tick) and at most a generous bound (3 times the
 * timeout plus sp_slow() seconds); says what it saw on stderr when not. */
int sp_elapsed_ok(const char *what, int timeout_ms, long long took_us);
/* This program's own path, for starting itself again: the module's file
 * name on Windows, /proc/self/exe on Linux, argv0 where neither answers. */
void sp_exe_path(char *buf, size_t size, const char *argv0);

#endif
