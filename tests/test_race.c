/* SPDX-License-Identifier: MIT */
/*
 * Races on one endpoint name: processes claiming it at once, and a claim
 * refused by a live listener. Eight racer processes stay up for the whole
 * test; each round the test names a fresh endpoint to all of them at once,
 * and checks that exactly one owns it, that the owner is the one a client
 * reaches, and that the refused claims left nothing queued in its listener.
 *
 * SOCKPASS_RACE_ROUNDS sets the number of rounds (default 500).
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>
#ifndef _WIN32
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/un.h>
#endif

#define SP_RACERS 8

static char sp_exe[4096];

static void sp_name(char *buf, size_t size, const char *what, int round) {
#ifdef _WIN32
  snprintf(buf, size, "sockpass-race-%ld-%s-%d", sp_getpid(), what, round);
#else
  snprintf(buf, size, "/tmp/sockpass-race-%ld-%s-%d.sock", sp_getpid(), what, round);
#endif
}

/* ---- The racer: commands arrive on the channel its starter gave ----
 * "L<name>": sockpass_listen(name); answers the code (4 bytes).
 * "A" (owner only): accept one client with a timeout, answer its pid to it,
 *   then accept again without waiting; answers both codes, closes both.
 * "Q": exit. */
static int sp_send_rc(sockpass_chan_t *c, int rc) {
  unsigned char b[4];
  sp_put32(b, (uint32_t)rc);
  return sockpass_send(c, NULL, 0, b, 4);
}

static int sp_recv_rc(sockpass_chan_t *c, int *rc) {
  unsigned char b[8];
  size_t n = 0, len = sizeof b;
  int r = sockpass_recv(c, NULL, &n, b, &len);
  if (r < 0)
    return r;
  if (len != 4)
    return SOCKPASS_EPROTO;
  *rc = (int)sp_get32(b);
  return 0;
}

static int sp_racer_main(void) {
  sockpass_chan_t *ctl = NULL, *l = NULL, *c = NULL;
  char cmd[512];
  if (sockpass_inherited_chan(&ctl) != 0)
    return 2;
  for (;;) {
    size_t n = 0, len = sizeof cmd - 1;
    int rc;
    if (sockpass_recv(ctl, NULL, &n, cmd, &len) < 0)
      break;
    cmd[len] = '\0';
    if (cmd[0] == 'L') {
      rc = sockpass_listen(cmd + 1, &l);
      if (sp_send_rc(ctl, rc) < 0)
        break;
    } else if (cmd[0] == 'A' && l != NULL) {
      unsigned char pid[4];
      int rc2;
      sockpass_set_timeout(l, sp_scale_ms(10000));
      rc = sockpass_accept(l, &c);
      if (rc == 0) {
        sp_put32(pid, (uint32_t)sp_getpid());
        rc = sockpass_send(c, NULL, 0, pid, 4);
      }
      sockpass_set_timeout(l, SOCKPASS_NONBLOCK);
      {
        sockpass_chan_t *extra = NULL;
        rc2 = sockpass_accept(l, &extra);
        sockpass_close(extra);
      }
      sockpass_close(c);
      c = NULL;
      sockpass_close(l);
      l = NULL;
      if (sp_send_rc(ctl, rc) < 0 || sp_send_rc(ctl, rc2) < 0)
        break;
    } else {
      break;
    }
  }
  sockpass_close(l);
  sockpass_close(ctl);
  return 0;
}

/* ---- The test side ---- */

static sockpass_proc_t *sp_procs[SP_RACERS];
static sockpass_chan_t *sp_ctl[SP_RACERS];

static int sp_race_after(void **state) {
  int i;
  for (i = 0; i < SP_RACERS; i++) {
    if (sp_ctl[i] != NULL) {
      sockpass_send(sp_ctl[i], NULL, 0, "Q", 1);
      sockpass_close(sp_ctl[i]);
      sp_ctl[i] = NULL;
    }
  }
  for (i = 0; i < SP_RACERS; i++) {
    if (sp_procs[i] != NULL) {
      if (sockpass_proc_wait(sp_procs[i], sp_scale_ms(10000), NULL) != 0) {
        sockpass_proc_kill(sp_procs[i]);
        sockpass_proc_wait(sp_procs[i], SOCKPASS_WAIT_FOREVER, NULL);
      }
      sockpass_proc_free(sp_procs[i]);
      sp_procs[i] = NULL;
    }
  }
  return sp_fd_after(state);
}

static int sp_rounds(void) {
  const char *e = getenv("SOCKPASS_RACE_ROUNDS");
  int n = e != NULL ? atoi(e) : 500;
  return n > 0 ? n : 500;
}

/* Eight processes claim one fresh name at the same moment, many times. */
static void listen_race(void **s) {
  const char *argv[] = {sp_exe, "--racer", NULL};
  int i, round, rounds = sp_rounds();
  (void)s;
  for (i = 0; i < SP_RACERS; i++) {
    sockpass_spawn_opts_t o;
    sockpass_chan_t *mine, *theirs;
    assert_sp(sockpass_pair(&mine, &theirs), 0);
    sockpass_spawn_opts_init(&o);
    o.chan = theirs;
    assert_sp(sockpass_spawn(sp_exe, argv, &o, &sp_procs[i]), 0);
    sp_ctl[i] = mine;
    assert_sp(sockpass_set_timeout(mine, sp_scale_ms(20000)), 0);
  }
  for (round = 0; round < rounds; round++) {
    char cmd[300];
    int rc[SP_RACERS], owner = -1, owners = 0, a, b;
    sockpass_chan_t *client = NULL;
    cmd[0] = 'L';
    sp_name(cmd + 1, sizeof cmd - 1, "r", round);
    for (i = 0; i < SP_RACERS; i++)
      assert_sp(sockpass_send(sp_ctl[i], NULL, 0, cmd, strlen(cmd)), 0);
    for (i = 0; i < SP_RACERS; i++) {
      assert_sp(sp_recv_rc(sp_ctl[i], &rc[i]), 0);
      if (rc[i] == 0) {
        owner = i;
        owners++;
      } else if (rc[i] != SOCKPASS_EADDRINUSE) {
        fail_msg("round %d: racer %d: listen gave %s", round, i, sockpass_err_name(rc[i]));
      }
    }
    if (owners != 1)
      fail_msg("round %d: %d owners", round, owners);
    /* The owner is the one a client reaches, and the refused claims left
     * nothing in its queue: only this client is there to accept. */
    assert_sp(sockpass_connect(cmd + 1, &client), 0);
    assert_sp(sockpass_send(sp_ctl[owner], NULL, 0, "A", 1), 0);
    assert_sp(sp_recv_rc(sp_ctl[owner], &a), 0);
    assert_sp(sp_recv_rc(sp_ctl[owner], &b), 0);
    assert_sp(a, 0);
    assert_sp(b, SOCKPASS_EAGAIN);
    {
      unsigned char pid[8];
      size_t n = 0, len = sizeof pid;
      assert_sp(sockpass_set_timeout(client, sp_scale_ms(10000)), 0);
      assert_sp(sockpass_recv(client, NULL, &n, pid, &len), 0);
      assert_int_equal(len, 4);
      assert_int_equal((long)sp_get32(pid), sockpass_proc_pid(sp_procs[owner]));
    }
    sockpass_close(client);
  }
  print_message("%d rounds of %d racers: one owner each time\n", rounds, SP_RACERS);
}

/* A claim on a live listener's name is refused and leaves no trace in it. */
static void refused_claim_queues_nothing(void **s) {
  char name[128];
  sockpass_chan_t *l, *l2 = (sockpass_chan_t *)&l2, *c = NULL, *d = NULL;
  (void)s;
  sp_name(name, sizeof name, "refused", 0);
  assert_sp(sockpass_listen(name, &l), 0);
  assert_sp(sockpass_listen(name, &l2), SOCKPASS_EADDRINUSE);
  assert_null(l2);
  assert_sp(sockpass_set_timeout(l, SOCKPASS_NONBLOCK), 0);
  assert_sp(sockpass_accept(l, &d), SOCKPASS_EAGAIN);
  /* Still the owner, and reachable. */
  assert_sp(sockpass_connect(name, &c), 0);
  assert_sp(sockpass_set_timeout(l, sp_scale_ms(10000)), 0);
  assert_sp(sockpass_accept(l, &d), 0);
  sockpass_close(c);
  sockpass_close(d);
  sockpass_close(l);
  /* Closed: the name is free again. */
  assert_sp(sockpass_listen(name, &l), 0);
  sockpass_close(l);
}

#ifdef _WIN32
/* The longest pipe name (256 characters with "\\.\pipe\"), and two long
 * names that differ only after the part of the claim kept verbatim: each
 * has its own owner, and one name in two cases is one name. */
static void long_names(void **s) {
  char a[300], b[300];
  sockpass_chan_t *la, *lb, *l2 = NULL, *c = NULL, *d = NULL;
  size_t i;
  (void)s;
  snprintf(a, sizeof a, "sockpass-long-%ld-", sp_getpid());
  for (i = strlen(a); i < 247; i++)
    a[i] = 'x';
  a[247] = '\0';
  memcpy(b, a, sizeof a);
  b[246] = 'y';
  assert_sp(sockpass_listen(a, &la), 0);
  assert_sp(sockpass_listen(b, &lb), 0);
  assert_sp(sockpass_listen(a, &l2), SOCKPASS_EADDRINUSE);
  for (i = 0; a[i] != '\0'; i++)
    b[i] = a[i] >= 'a' && a[i] <= 'z' ? (char)(a[i] - 'a' + 'A') : a[i];
  b[i] = '\0';
  assert_sp(sockpass_listen(b, &l2), SOCKPASS_EADDRINUSE); /* pipe names ignore case */
  assert_sp(sockpass_connect(a, &c), 0);
  assert_sp(sockpass_set_timeout(la, sp_scale_ms(5000)), 0);
  assert_sp(sockpass_accept(la, &d), 0);
  sockpass_close(c);
  sockpass_close(d);
  sockpass_close(la);
  sockpass_close(lb);
  a[247] = 'z';
  a[248] = '\0';
  assert_sp(sockpass_listen(a, &l2), SOCKPASS_ENAMETOOLONG);
}
#endif

#ifndef _WIN32
/* What a listener that died leaves behind (a socket file, an unlocked lock
 * file) does not keep the path; a lock file that is not a plain file does. */
static void stale_leftovers(void **s) {
  char name[128], lock[160];
  struct sockaddr_un sa;
  sockpass_chan_t *l;
  struct stat st;
  int fd;
  (void)s;
  sp_name(name, sizeof name, "stale", 0);
  snprintf(lock, sizeof lock, "%s.lock", name);
  /* A socket file nobody listens on, and the lock file of a dead owner. */
  fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
  assert_true(fd >= 0);
  memset(&sa, 0, sizeof sa);
  sa.sun_family = AF_UNIX;
  assert_true(strlen(name) < sizeof sa.sun_path);
  memcpy(sa.sun_path, name, strlen(name) + 1);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
  close(fd);
  fd = open(lock, O_RDWR | O_CREAT, 0600);
  assert_true(fd >= 0);
  close(fd);
  assert_sp(sockpass_listen(name, &l), 0);
  /* The lock file is there, mode 0600, while the listener lives... */
  assert_int_equal(lstat(lock, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  sockpass_close(l);
  /* ...and gone with it, with the socket file. */
  assert_int_not_equal(lstat(lock, &st), 0);
  assert_int_not_equal(lstat(name, &st), 0);

  /* A lock held by someone else (as a listener in another process holds
   * it) refuses the claim, and nothing is created or removed. */
  fd = open(lock, O_RDWR | O_CREAT, 0600);
  assert_true(fd >= 0);
  assert_int_equal(flock(fd, LOCK_EX), 0);
  assert_sp(sockpass_listen(name, &l), SOCKPASS_EADDRINUSE);
  assert_int_not_equal(lstat(name, &st), 0);
  close(fd);
  assert_sp(sockpass_listen(name, &l), 0);
  sockpass_close(l);

  /* A symbolic link or directory at the lock path is not followed. */
  assert_int_equal(symlink("/tmp", lock), 0);
  assert_sp(sockpass_listen(name, &l), SOCKPASS_EADDRINUSE);
  unlink(lock);
  assert_int_equal(mkdir(lock, 0700), 0);
  assert_sp(sockpass_listen(name, &l), SOCKPASS_EADDRINUSE);
  rmdir(lock);
}
#endif

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(listen_race, sp_fd_before, sp_race_after),
      SP_TEST(refused_claim_queues_nothing),
#ifndef _WIN32
      SP_TEST(stale_leftovers),
#else
      SP_TEST(long_names),
#endif
  };
  sp_exe_path(sp_exe, sizeof sp_exe, argv[0]);
  if (argc >= 2 && strcmp(argv[1], "--racer") == 0)
    return sp_racer_main();
  return sp_test_main(argc, argv, "race", tests, sizeof tests / sizeof tests[0], NULL, 0);
}
