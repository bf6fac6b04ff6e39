/* SPDX-License-Identifier: MIT */
/* Windows: Winsock start-up, sockets that arrive by any route, error codes. */
#include "win.h"

#include <ws2tcpip.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* ---- Winsock, once per process ---- */

static INIT_ONCE sp_wsa_once = INIT_ONCE_STATIC_INIT;

static BOOL CALLBACK sp_wsa_start(PINIT_ONCE once, PVOID param, PVOID *ctx) {
  WSADATA wd;
  (void)once;
  (void)param;
  (void)ctx;
  if (WSAStartup(MAKEWORD(2, 2), &wd) != 0)
    return FALSE; /* not done: a later call tries again */
  if (LOBYTE(wd.wVersion) != 2 || HIBYTE(wd.wVersion) != 2) {
    WSACleanup(); /* gives back only the reference taken just above */
    return FALSE;
  }
  /* The reference is kept for the life of the process: the application's
   * own WSACleanup calls, balanced with its WSAStartup calls, never bring
   * the count to zero under the library's sockets. */
  return TRUE;
}

int sp__wsa_init(void) {
  if (!InitOnceExecuteOnce(&sp_wsa_once, sp_wsa_start, NULL, NULL))
    return SOCKPASS_EWINSOCK;
  return 0;
}

int sp__win_error(void) { return sp__translate((int)GetLastError()); }

int sp__wsa_error(void) { return sp__translate(WSAGetLastError()); }

/* ---- Duplicated sockets ---- */

int sp__sock_dup(SOCKET s, DWORD pid, unsigned char *rec) {
  WSAPROTOCOL_INFOW info;
  if (WSADuplicateSocketW(s, pid, &info) != 0) {
    int rc = sp__wsa_error(), type = 0, tl = (int)sizeof type;
    DWORD hflags;
    /* As on POSIX: a closed value is EBADF, a live handle of another kind
     * (a file, a pipe) is no socket. Winsock says ENOTSOCK or EOPNOTSUPP
     * for both. */
    if (!GetHandleInformation((HANDLE)s, &hflags))
      return SOCKPASS_EBADF;
    if (getsockopt(s, SOL_SOCKET, SO_TYPE, (char *)&type, &tl) != 0)
      return SOCKPASS_ENOTSOCK;
    return rc;
  }
  memcpy(rec, &info, sizeof info);
  return 0;
}

int sp__sock_rebuild(const unsigned char *rec, SOCKET *out) {
  WSAPROTOCOL_INFOW info;
  SOCKET s;
  int type = 0, tl = (int)sizeof type;
  memcpy(&info, rec, sizeof info);
  s = WSASocketW(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, &info, 0,
                 WSA_FLAG_OVERLAPPED | WSA_FLAG_NO_HANDLE_INHERIT);
  if (s == INVALID_SOCKET && WSAGetLastError() == WSAEINVAL) {
    /* Windows 7 before SP1 does not know WSA_FLAG_NO_HANDLE_INHERIT. */
    s = WSASocketW(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, &info, 0,
                   WSA_FLAG_OVERLAPPED);
    if (s != INVALID_SOCKET)
      SetHandleInformation((HANDLE)s, HANDLE_FLAG_INHERIT, 0);
  }
  if (s == INVALID_SOCKET)
    return sp__wsa_error();
  /* Wine's WSASocketW returns whatever handle value a record names: a
   * replayed record names a socket that may be closed, a forged one any
   * handle of this process. What it returned must be a live socket of the
   * record's type; if it is not, it is not ours to close either. */
  if (getsockopt(s, SOL_SOCKET, SO_TYPE, (char *)&type, &tl) != 0 || type != info.iSocketType)
    return SOCKPASS_EPROTO;
  *out = s;
  return 0;
}

void sp__sock_drop(const unsigned char *recs, size_t n) {
  size_t i;
  SOCKET s;
  for (i = 0; i < n; i++)
    if (sp__sock_rebuild(recs + i * SP_REC_SIZE, &s) == 0)
      closesocket(s);
}

/* ---- Sockets that arrived by inheritance, argv, environment ---- */

int sp__sock_info(sockpass_sock_t s, int *family, int *type, int *listening, int *port) {
  WSAPROTOCOL_INFOW info;
  struct sockaddr_storage ss;
  int v = 0, vl = (int)sizeof v, il = (int)sizeof info, sl = (int)sizeof ss, rc;
  DWORD hflags;
  if ((rc = sp__wsa_init()) < 0)
    return rc;
  if (getsockopt(s, SOL_SOCKET, SO_TYPE, (char *)&v, &vl) != 0)
    return GetHandleInformation((HANDLE)s, &hflags) ? SOCKPASS_ENOTSOCK : SOCKPASS_EBADF;
  *type = v;
  if (getsockopt(s, SOL_SOCKET, SO_PROTOCOL_INFOW, (char *)&info, &il) != 0)
    return sp__wsa_error();
  *family = info.iAddressFamily;
  v = 0;
  vl = (int)sizeof v;
  *listening = getsockopt(s, SOL_SOCKET, SO_ACCEPTCONN, (char *)&v, &vl) == 0 && v != 0;
  *port = 0;
  memset(&ss, 0, sizeof ss);
  if (getsockname(s, (struct sockaddr *)&ss, &sl) == 0) { /* fails when unbound */
    if (ss.ss_family == AF_INET)
      *port = ntohs(((const struct sockaddr_in *)&ss)->sin_port);
    else if (ss.ss_family == AF_INET6)
      *port = ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
  }
  return 0;
}

int sp__adopt(sockpass_sock_t raw, sockpass_sock_t *sock) {
  WSAPROTOCOL_INFOW info;
  DWORD hflags = 0;
  int type = 0, tl = (int)sizeof type, rc;
  SOCKET s;

  if ((rc = sp__wsa_init()) < 0)
    return rc;
  /* Every socket of the base providers is a kernel handle: a value that is
   * no handle at all is garbage, not merely "not a socket". */
  if (!GetHandleInformation((HANDLE)raw, &hflags))
    return SOCKPASS_EBADF;
  if (getsockopt(raw, SOL_SOCKET, SO_TYPE, (char *)&type, &tl) == 0) {
    /* Winsock knows it fully in this process: keep the value. */
    if ((hflags & HANDLE_FLAG_INHERIT) != 0 &&
        !SetHandleInformation((HANDLE)raw, HANDLE_FLAG_INHERIT, 0))
      return sp__win_error();
    *sock = raw;
    return 0;
  }
  /* A socket this process inherited but Winsock has not registered (Wine
   * answers WSAENOTSOCK to getsockopt and closesocket for those), or not a
   * socket at all. Duplicating it to ourselves tells the two apart and
   * yields a socket Winsock knows in full, created non-inheritable. */
  if (WSADuplicateSocketW(raw, GetCurrentProcessId(), &info) != 0) {
    /* A live handle that Winsock cannot duplicate: a file, a pipe, an
     * event. Only a shortage of resources is reported as itself. */
    rc = sp__translate(WSAGetLastError());
    if (rc == SOCKPASS_ENOMEM || rc == SOCKPASS_EMFILE)
      return rc;
    return SOCKPASS_ENOTSOCK;
  }
  if ((rc = sp__sock_rebuild((const unsigned char *)&info, &s)) < 0)
    return rc;
  /* The new descriptor shares the socket; the old value goes away. */
  if (closesocket(raw) != 0)
    CloseHandle((HANDLE)raw);
  *sock = s;
  return 0;
}

int sp__close_sock(sockpass_sock_t sock) {
  int rc;
  if ((rc = sp__wsa_init()) < 0)
    return rc;
  if (closesocket(sock) != 0)
    return sp__wsa_error();
  return 0;
}

/* ---- Errors ---- */

int sp__translate(int oscode) {
  switch (oscode) {
  case 0:
    return 0;
  case ERROR_BROKEN_PIPE:
  case ERROR_NO_DATA:
  case ERROR_PIPE_NOT_CONNECTED:
  case ERROR_HANDLE_EOF:
  case WSAECONNRESET:
  case WSAESHUTDOWN:
  case WSAEDISCON:
    return SOCKPASS_EOF;
  case ERROR_SEM_TIMEOUT:
  case WAIT_TIMEOUT:
  case WSAETIMEDOUT:
    return SOCKPASS_ETIMEDOUT;
  case ERROR_OPERATION_ABORTED:
  case WSAEINTR:
  case WSA_E_CANCELLED:
  case WSAECANCELLED:
    return SOCKPASS_ECANCELED;
  case ERROR_PIPE_BUSY:
  case WSAEWOULDBLOCK:
    return SOCKPASS_EAGAIN;
  case ERROR_INVALID_PARAMETER:
  case ERROR_INVALID_NAME:
  case ERROR_BAD_PATHNAME:
  case WSAEINVAL:
  case WSAEFAULT:
    return SOCKPASS_EINVAL;
  case WSAENOTSOCK:
    return SOCKPASS_ENOTSOCK;
  case ERROR_INVALID_HANDLE:
  case WSAEBADF:
    return SOCKPASS_EBADF;
  case ERROR_NOT_ENOUGH_MEMORY:
  case ERROR_OUTOFMEMORY:
  case ERROR_NO_SYSTEM_RESOURCES:
  case WSAENOBUFS:
    return SOCKPASS_ENOMEM;
  case ERROR_TOO_MANY_OPEN_FILES:
  case WSAEMFILE:
    return SOCKPASS_EMFILE;
  case ERROR_ALREADY_EXISTS:
  case ERROR_FILE_EXISTS:
  case WSAEADDRINUSE:
    return SOCKPASS_EADDRINUSE;
  case ERROR_FILE_NOT_FOUND:
  case ERROR_PATH_NOT_FOUND:
    return SOCKPASS_ENOENT;
  case WSAECONNREFUSED:
    return SOCKPASS_ECONNREFUSED;
  case ERROR_ACCESS_DENIED:
  case WSAEACCES:
    return SOCKPASS_EACCES;
  case ERROR_FILENAME_EXCED_RANGE:
  case WSAENAMETOOLONG:
    return SOCKPASS_ENAMETOOLONG;
  case ERROR_NOT_SUPPORTED:
  case ERROR_INVALID_FUNCTION:
  case WSAEOPNOTSUPP:
  case WSAEAFNOSUPPORT:
  case WSAEPROTONOSUPPORT:
  case WSAESOCKTNOSUPPORT:
    return SOCKPASS_ENOTSUP;
  case WSANOTINITIALISED:
  case WSASYSNOTREADY:
  case WSAVERNOTSUPPORTED:
    return SOCKPASS_EWINSOCK;
  default:
    return SOCKPASS_SYSERR(oscode);
  }
}

void sp__sys_strerror(int oscode, char *buf, size_t size) {
  DWORD saved_last = GetLastError();
  int saved_errno = errno; /* WSAGetLastError() is the same slot */
  DWORD n;
  if (size == 0)
    return;
  n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS |
                         FORMAT_MESSAGE_MAX_WIDTH_MASK,
                     NULL, (DWORD)oscode, MAKELANGID(LANG_NEUTRAL, SUBLANG_DEFAULT), buf,
                     size > 0xffff ? 0xffff : (DWORD)size, NULL);
  if (n == 0) {
    snprintf(buf, size, "system error %d", oscode);
  } else {
    /* Drop the trailing blanks and the period-less line ends. */
    while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\r' || buf[n - 1] == '\n'))
      buf[--n] = '\0';
  }
  buf[size - 1] = '\0';
  SetLastError(saved_last);
  errno = saved_errno;
}
