/* SPDX-License-Identifier: MIT */
/* POSIX sockets that arrived by any route, and OS error translation. */
#include "sockpass_config.h"
#include "platform.h"
#include "posix.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

int sp__is_sock(int fd) {
  struct stat st;
  if (fstat(fd, &st) < 0)
    return sp__translate(errno);
  return S_ISSOCK(st.st_mode) ? 0 : SOCKPASS_ENOTSOCK;
}

int sp__adopt(sockpass_sock_t raw, sockpass_sock_t *sock) {
  int fl, rc;
  if ((rc = sp__is_sock(raw)) < 0)
    return rc;
  if ((fl = fcntl(raw, F_GETFD)) < 0)
    return sp__translate(errno);
  if (!(fl & FD_CLOEXEC) && fcntl(raw, F_SETFD, fl | FD_CLOEXEC) < 0)
    return sp__translate(errno);
  *sock = raw;
  return 0;
}

int sp__sock_info(sockpass_sock_t fd, int *family, int *type, int *listening, int *port) {
  struct sockaddr_storage ss;
  socklen_t sl = sizeof ss, vl;
  int v, rc;
  if ((rc = sp__is_sock(fd)) < 0)
    return rc;
  vl = sizeof v;
  if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &v, &vl) < 0)
    return sp__translate(errno);
  *type = v;
  memset(&ss, 0, sizeof ss);
  if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
    return sp__translate(errno);
  *family = ss.ss_family;
  *listening = 0;
#ifdef SO_ACCEPTCONN
  vl = sizeof v;
  if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) == 0)
    *listening = v != 0;
#endif
  *port = 0;
  if (ss.ss_family == AF_INET)
    *port = ntohs(((const struct sockaddr_in *)&ss)->sin_port);
  else if (ss.ss_family == AF_INET6)
    *port = ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
  return 0;
}

int sp__close_sock(sockpass_sock_t sock) {
  /* On Linux the descriptor is gone even when close reports EINTR: never retry. */
  if (close(sock) < 0 && errno != EINTR)
    return sp__translate(errno);
  return 0;
}

int sp__translate(int e) {
  switch (e) {
  case 0:
    return 0;
  case EPIPE:
  case ECONNRESET:
    return SOCKPASS_EOF;
  case ETIMEDOUT:
    return SOCKPASS_ETIMEDOUT;
  case EAGAIN:
#if EWOULDBLOCK != EAGAIN
  case EWOULDBLOCK:
#endif
    return SOCKPASS_EAGAIN;
  case ECANCELED:
    return SOCKPASS_ECANCELED;
  case EINVAL:
    return SOCKPASS_EINVAL;
  case ENOTSOCK:
    return SOCKPASS_ENOTSOCK;
  case EBADF:
    return SOCKPASS_EBADF;
  case ENOMEM:
  case ENOBUFS:
    return SOCKPASS_ENOMEM;
  case EMFILE:
  case ENFILE:
    return SOCKPASS_EMFILE;
  case EADDRINUSE:
    return SOCKPASS_EADDRINUSE;
  case ENOENT:
    return SOCKPASS_ENOENT;
  case ECONNREFUSED:
    return SOCKPASS_ECONNREFUSED;
  case EACCES:
  case EPERM:
    return SOCKPASS_EACCES;
  case ENAMETOOLONG:
    return SOCKPASS_ENAMETOOLONG;
  case EPROTO:
    return SOCKPASS_EPROTO;
  case EOPNOTSUPP:
#if defined(ENOTSUP) && ENOTSUP != EOPNOTSUPP
  case ENOTSUP:
#endif
  case EPROTONOSUPPORT:
  case EAFNOSUPPORT:
  case EPROTOTYPE:
    return SOCKPASS_ENOTSUP;
  case EMSGSIZE:
    return SOCKPASS_EMSGSIZE;
#ifdef ETOOMANYREFS
  case ETOOMANYREFS: /* Linux: too many descriptors in flight */
    return SOCKPASS_ETOOMANY;
#endif
  default:
    return SOCKPASS_SYSERR(e);
  }
}

void sp__sys_strerror(int code, char *buf, size_t size) {
  int saved = errno;
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
  const char *s = strerror_r(code, buf, size);
  if (s != buf)
    snprintf(buf, size, "%s", s);
#else
  if (strerror_r(code, buf, size) != 0)
    snprintf(buf, size, "system error %d", code);
#endif
  errno = saved;
}
