/* SPDX-License-Identifier: MIT */
/* Start a worker with a channel end, send it a listening socket, connect. */
#include <sockpass.h>
#include <stdio.h>
#include <string.h>
#ifdef _WIN32
#include <ws2tcpip.h>
#else
#include <netinet/in.h>
#include <sys/socket.h>
#endif

static int worker(void) {
  sockpass_chan_t *chan;
  sockpass_sock_t listener, conn;
  size_t n = 1, len = 0;
  if (sockpass_inherited_chan(&chan) != 0 || sockpass_recv(chan, &listener, &n, NULL, &len) != 0)
    return 1;
  conn = accept(listener, NULL, NULL); /* the listener works here at once */
  send(conn, "hello", 5, 0);
  sockpass_close_sock(conn);
  sockpass_close_sock(listener);
  sockpass_close(chan);
  return 0;
}

int main(int argc, char **argv) {
  sockpass_chan_t *mine, *theirs;
  sockpass_spawn_opts_t o;
  sockpass_proc_t *proc;
  const char *const wargv[] = {argv[0], "worker", NULL};
  struct sockaddr_in a = {0};
  socklen_t alen = sizeof a;
  char buf[8] = "";
  int rc, code = -1;
  if (argc > 1)
    return worker();
#ifdef _WIN32
  WSADATA wsa;
  WSAStartup(MAKEWORD(2, 2), &wsa);
#endif
  sockpass_sock_t l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(0x7f000001); /* 127.0.0.1, any free port */
  bind(l, (struct sockaddr *)&a, sizeof a);
  listen(l, 1);
  getsockname(l, (struct sockaddr *)&a, &alen);

  sockpass_pair(&mine, &theirs);
  sockpass_spawn_opts_init(&o);
  o.chan = theirs; /* the worker's end: it takes it with sockpass_inherited_chan */
  rc = sockpass_spawn(argv[0], wargv, &o, &proc);
  if (rc == 0)
    rc = sockpass_send(mine, &l, 1, NULL, 0); /* borrows l: still ours */
  if (rc == 0 && connect(c, (struct sockaddr *)&a, sizeof a) == 0)
    recv(c, buf, sizeof buf - 1, 0);
  if (rc == 0) {
    rc = sockpass_proc_wait(proc, SOCKPASS_WAIT_FOREVER, &code);
    sockpass_proc_free(proc);
  } else {
    sockpass_close(theirs); /* still ours when the spawn failed */
  }
  sockpass_close(mine);
  sockpass_close_sock(l);
  sockpass_close_sock(c);
  printf("worker said \"%s\", exit %d: %s\n", buf, code, rc ? sockpass_strerror(rc) : "ok");
  return rc == 0 && code == 0 && strcmp(buf, "hello") == 0 ? 0 : 1;
}
