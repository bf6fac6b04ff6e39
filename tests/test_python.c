/* SPDX-License-Identifier: MIT */
/* Interoperation with a plain SCM_RIGHTS peer that is not sockpass: Python's
 * socket.send_fds / recv_fds over a SOCK_SEQPACKET socketpair, both ways. */
#include "harness.h"

#include <fcntl.h>
#include <string.h>
#include <sys/wait.h>

static void python_both_directions(void **s) {
  sockpass_chan_t *c;
  sockpass_sock_t client, server, udp, got = -1;
  unsigned short port;
  char buf[64], arg[16];
  size_t n = 1, len = sizeof buf;
  int sv[2], status = 0;
  pid_t pid;

  assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  assert_sp(sockpass_open(sv[0], &c), 0);
  snprintf(arg, sizeof arg, "%d", sv[1]);
  pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    fcntl(sv[1], F_SETFD, 0);
    execl(SOCKPASS_PYTHON, SOCKPASS_PYTHON, SOCKPASS_PYTHON_PEER, arg, (char *)NULL);
    _exit(127);
  }
  close(sv[1]);
  assert_sp(sockpass_set_timeout(c, sp_scale_ms(20000)), 0);

  /* sockpass -> Python: a connection and a UDP socket with a payload. */
  assert_int_equal(sp_tcp_pair(&client, &server), 0);
  udp = sp_udp_socket(&port);
  {
    sockpass_sock_t socks[2];
    socks[0] = server;
    socks[1] = udp;
    assert_sp(sockpass_send(c, socks, 2, "to-python", 9), 0);
  }
  close(server);
  close(udp);
  memset(buf, 0, sizeof buf);
  assert_int_equal(sp_read_n(client, buf, 17), 0);
  assert_memory_equal(buf, "hello from python", 17);
  close(client);

  /* Python -> sockpass: a socket of Python's with a payload. */
  assert_sp(sockpass_recv(c, &got, &n, buf, &len), 0);
  assert_int_equal(n, 1);
  assert_int_equal(len, 11);
  assert_memory_equal(buf, "from-python", 11);
  assert_true(fcntl(got, F_GETFD) & FD_CLOEXEC);
  assert_int_equal(sp_read_n(got, buf, 22), 0);
  assert_memory_equal(buf, "over the passed socket", 22);
  close(got);
  assert_sp(sockpass_send(c, NULL, 0, "bye", 3), 0);

  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  sockpass_close(c);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {SP_TEST(python_both_directions)};
  return sp_test_main(argc, argv, "python", tests, 1, NULL, 0);
}
