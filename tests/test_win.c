/* SPDX-License-Identifier: MIT */
/* Windows: the parent and child of seed 000, without the dummy socket. The
 * child's first Winsock call is a sockpass call; before it, socket() must
 * fail with WSANOTINITIALISED (proof that nobody initialized Winsock), and
 * after it every ordinary Winsock call works. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#define HELLO "Hello, world!\n"

/* ---- Children: no WSAStartup anywhere in them. ---- */

static int winsock_not_started(void) {
  SOCKET s = socket(AF_INET, SOCK_STREAM, 0);
  if (s != INVALID_SOCKET) {
    closesocket(s);
    return 0;
  }
  return WSAGetLastError() == WSANOTINITIALISED;
}

static int serve_hello(SOCKET listener) {
  SOCKET conn = accept(listener, NULL, NULL), later;
  SP_CHECK(conn != INVALID_SOCKET);
  SP_CHECK(sp_write_all(conn, HELLO, strlen(HELLO)) == 0);
  closesocket(conn);
  closesocket(listener);
  later = socket(AF_INET, SOCK_STREAM, 0); /* the call seed 000 needed a dummy for */
  SP_CHECK(later != INVALID_SOCKET);
  closesocket(later);
  return 0;
}

static int child_inherited(const char *arg) {
  SOCKET raw = (SOCKET)_strtoui64(arg, NULL, 10), l = INVALID_SOCKET;
  SP_CHECK(winsock_not_started());
  SP_CHECK_RC(sockpass_adopt(raw, &l), 0);
  return serve_hello(l);
}

static int child_named(const char *name) {
  sockpass_chan_t *c;
  SOCKET l = INVALID_SOCKET;
  size_t n = 1, len = 0;
  SP_CHECK(winsock_not_started());
  SP_CHECK_RC(sockpass_connect(name, &c), 0);
  SP_CHECK_RC(sockpass_recv(c, &l, &n, NULL, &len), 0);
  SP_CHECK(n == 1);
  sockpass_close(c);
  return serve_hello(l);
}

/* ---- Parents ---- */

static void read_hello(unsigned short port) {
  char buf[sizeof HELLO];
  SOCKET c = sp_tcp_connect(port);
  assert_true(c != INVALID_SOCKET);
  memset(buf, 0, sizeof buf);
  assert_int_equal(sp_read_n(c, buf, strlen(HELLO)), 0);
  assert_string_equal(buf, HELLO);
  closesocket(c);
}

/* Seed 000: the listener inherited, its value on the command line. */
static void seed000_inherited(void **s) {
  unsigned short port = 0;
  SOCKET l = sp_tcp_listener(&port);
  char args[64];
  sp_child_t *child;
  assert_true(l != INVALID_SOCKET);
  snprintf(args, sizeof args, "--seed000-inherited %llu", (unsigned long long)l);
  child = sp_spawn_self(args, (HANDLE)l);
  assert_non_null(child);
  read_hello(port);
  assert_int_equal(sp_child_wait(child), 0);
  closesocket(l);
}

/* Seed 000 again, the listener sent over a named channel. */
static void seed000_sent(void **s) {
  unsigned short port = 0;
  SOCKET l = sp_tcp_listener(&port);
  sockpass_chan_t *srv, *c;
  char name[64], args[96];
  sp_child_t *child;
  assert_true(l != INVALID_SOCKET);
  snprintf(name, sizeof name, "sockpass-seed000-%lu", (unsigned long)GetCurrentProcessId());
  snprintf(args, sizeof args, "--seed000-named %s", name);
  assert_sp(sockpass_listen(name, &srv), 0);
  child = sp_spawn_self(args, NULL);
  assert_non_null(child);
  assert_sp(sockpass_set_timeout(srv, sp_scale_ms(30000)), 0);
  assert_sp(sockpass_accept(srv, &c), 0);
  assert_sp(sockpass_send(c, &l, 1, NULL, 0), 0);
  closesocket(l);
  read_hello(port);
  assert_int_equal(sp_child_wait(child), 0);
  sockpass_close(c);
  sockpass_close(srv);
}

/* A file and a pipe are not sockets; garbage is not a handle. */
static void adopt_refuses_non_sockets(void **s) {
  SOCKET out;
  HANDLE rd, wr, file;
  wchar_t path[MAX_PATH], dir[MAX_PATH];
  assert_true(CreatePipe(&rd, &wr, NULL, 0));
  assert_sp(sockpass_adopt((SOCKET)rd, &out), SOCKPASS_ENOTSOCK);
  CloseHandle(rd);
  CloseHandle(wr);
  GetTempPathW(MAX_PATH, dir);
  GetTempFileNameW(dir, L"spt", 0, path);
  file = CreateFileW(path, GENERIC_READ | GENERIC_WRITE, 0, NULL, CREATE_ALWAYS,
                     FILE_FLAG_DELETE_ON_CLOSE, NULL);
  assert_true(file != INVALID_HANDLE_VALUE);
  assert_sp(sockpass_adopt((SOCKET)file, &out), SOCKPASS_ENOTSOCK);
  CloseHandle(file);
  assert_sp(sockpass_adopt((SOCKET)0x7ffc, &out), SOCKPASS_EBADF);
}

/* ---- Windows' close-on-exec: no handle the library makes or hands over
 * is inheritable (pair, listen, connect, accept, open, recv, adopt). ---- */

static int inheritable(HANDLE h) {
  DWORD flags = 0;
  if (!GetHandleInformation(h, &flags))
    fail_msg("GetHandleInformation(%p) failed: %lu", (void *)h, (unsigned long)GetLastError());
  return (flags & HANDLE_FLAG_INHERIT) != 0;
}

static void nothing_inheritable(void **s) {
  SECURITY_ATTRIBUTES inherit = {sizeof inherit, NULL, TRUE};
  sockpass_chan_t *a, *b, *l, *c, *d, *o1, *o2;
  wchar_t wname[96];
  char name[96];
  HANDLE srv, cli;
  unsigned short port;
  SOCKET sk = sp_udp_socket(&port), got = INVALID_SOCKET, raw, adopted = INVALID_SOCKET;
  size_t n = 1, len = 0;
  assert_true(sk != INVALID_SOCKET);
  assert_true(SetHandleInformation((HANDLE)sk, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT));
  assert_true(inheritable((HANDLE)sk)); /* the check below can fail */
  assert_sp(sockpass_pair(&a, &b), 0);
  snprintf(name, sizeof name, "sockpass-inherit-%ld", sp_getpid());
  assert_sp(sockpass_listen(name, &l), 0);
  assert_sp(sockpass_connect(name, &c), 0);
  assert_sp(sockpass_accept(l, &d), 0);
  /* open: both ends of a pipe made inheritable by hand */
  _snwprintf(wname, 96, L"\\\\.\\pipe\\sockpass-inherit-open-%ld", sp_getpid());
  srv = CreateNamedPipeW(wname, PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED,
                         PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT, 1, 65536, 65536, 0,
                         &inherit);
  assert_true(srv != INVALID_HANDLE_VALUE);
  cli = CreateFileW(wname, GENERIC_READ | GENERIC_WRITE, 0, &inherit, OPEN_EXISTING,
                    FILE_FLAG_OVERLAPPED, NULL);
  assert_true(cli != INVALID_HANDLE_VALUE);
  assert_true(inheritable(srv) && inheritable(cli));
  assert_sp(sockpass_open(srv, &o1), 0);
  assert_sp(sockpass_open(cli, &o2), 0);
  /* recv: an inheritable socket arrives not inheritable */
  assert_sp(sockpass_send(a, &sk, 1, NULL, 0), 0);
  assert_sp(sockpass_recv(b, &got, &n, NULL, &len), 0);
  assert_int_equal(n, 1);
  assert_int_equal(sp_sock_port(got), port);
  raw = socket(AF_INET, SOCK_DGRAM, 0);
  assert_true(raw != INVALID_SOCKET);
  assert_true(SetHandleInformation((HANDLE)raw, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT));
  assert_sp(sockpass_adopt(raw, &adopted), 0);
  assert_false(inheritable(sockpass_handle(a)));
  assert_false(inheritable(sockpass_handle(b)));
  assert_false(inheritable(sockpass_handle(l)));
  assert_false(inheritable(sockpass_handle(c)));
  assert_false(inheritable(sockpass_handle(d)));
  assert_false(inheritable(sockpass_handle(o1)));
  assert_false(inheritable(sockpass_handle(o2)));
  assert_false(inheritable((HANDLE)got));
  assert_false(inheritable((HANDLE)adopted));
  closesocket(got);
  closesocket(sk);
  closesocket(adopted);
  sockpass_close(o1);
  sockpass_close(o2);
  sockpass_close(c);
  sockpass_close(d);
  sockpass_close(l);
  sockpass_close(a);
  sockpass_close(b);
}

int main(int argc, char **argv) {
  const struct CMUnitTest tests[] = {
      SP_TEST(seed000_inherited),
      SP_TEST(seed000_sent),
      SP_TEST(adopt_refuses_non_sockets),
      SP_TEST(nothing_inheritable),
  };
  if (argc == 3 && strcmp(argv[1], "--seed000-inherited") == 0)
    return child_inherited(argv[2]);
  if (argc == 3 && strcmp(argv[1], "--seed000-named") == 0)
    return child_named(argv[2]);
  return sp_test_main(argc, argv, "win", tests, sizeof tests / sizeof tests[0], NULL, 0);
}
