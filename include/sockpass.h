/* SPDX-License-Identifier: MIT */
/*
 * sockpass: pass sockets between processes, the same way on POSIX and Windows.
 *
 * Conventions for every function below:
 *   - 0 (or a count) is success; a negative SOCKPASS_E* code is an error.
 *   - Pointers passed in are borrowed for the duration of the call only.
 *   - "Hands over" means the caller becomes the owner and must close the object;
 *     "takes ownership" means the library closes it, on success and on error.
 *   - A channel may be used by several threads at once: each sockpass_send is
 *     one whole message, never interleaved with another, and on message
 *     channels (the default) each sockpass_recv returns one whole message.
 *     A stream channel (sockpass_open on a SOCK_STREAM socket) has the
 *     stream's boundaries; docs/api.md says what that means.
 *
 * docs/api.md holds the full contract of each function.
 */
#ifndef SOCKPASS_H
#define SOCKPASS_H

#include <stddef.h>

#ifdef _WIN32
#include <winsock2.h>
#include <windows.h>
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Export macro: empty for static builds (SOCKPASS_STATIC). ---- */
#if defined(SOCKPASS_STATIC)
#define SOCKPASS_EXTERN
#elif defined(_WIN32)
#if defined(SOCKPASS_BUILDING)
#define SOCKPASS_EXTERN __declspec(dllexport)
#else
#define SOCKPASS_EXTERN __declspec(dllimport)
#endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#define SOCKPASS_EXTERN __attribute__((visibility("default")))
#else
#define SOCKPASS_EXTERN
#endif

/* ---- Version ---- */
#define SOCKPASS_VERSION_MAJOR 0
#define SOCKPASS_VERSION_MINOR 1
#define SOCKPASS_VERSION_PATCH 0
#define SOCKPASS_VERSION_HEX                                                   \
  ((SOCKPASS_VERSION_MAJOR << 16) | (SOCKPASS_VERSION_MINOR << 8) |            \
   SOCKPASS_VERSION_PATCH)

/* The version the library was built as: SOCKPASS_VERSION_HEX and "0.1.0". */
SOCKPASS_EXTERN unsigned int sockpass_version(void);
SOCKPASS_EXTERN const char *sockpass_version_string(void);

/* ---- OS types ---- */
#ifdef _WIN32
typedef SOCKET sockpass_sock_t;
typedef HANDLE sockpass_handle_t; /* a channel's OS handle: a pipe HANDLE */
#define SOCKPASS_INVALID_SOCK INVALID_SOCKET
#define SOCKPASS_INVALID_HANDLE INVALID_HANDLE_VALUE
#else
typedef int sockpass_sock_t;
typedef int sockpass_handle_t; /* a channel's OS handle: an AF_UNIX socket */
#define SOCKPASS_INVALID_SOCK (-1)
#define SOCKPASS_INVALID_HANDLE (-1)
#endif

typedef struct sockpass_chan sockpass_chan_t;

/* ---- Limits, the same on every OS ---- */
/* Sockets in one message. 253 is Linux's SCM_MAX_FD, the lowest kernel limit. */
#define SOCKPASS_MAX_SOCKS 253
/* Payload bytes in one message. */
#define SOCKPASS_MAX_PAYLOAD 65536

/* ---- Errors ----
 * One list gives the enum, sockpass_strerror and sockpass_err_name. Values are
 * fixed and identical on every OS; new codes are only ever appended.
 * An OS error with no code of its own is returned as SOCKPASS_SYSERR(code),
 * where code is the errno value (POSIX) or the GetLastError/WSAGetLastError
 * value (Windows); sockpass_strerror gives the OS's text for it.
 */
#define SOCKPASS_ERRNO_MAP(XX)                                                 \
  XX(EOF, -3001, "peer closed the channel")                                    \
  XX(ETRUNC, -3002, "message truncated: more sockets or bytes than the room given") \
  XX(ETOOMANY, -3003, "too many sockets for one message")                      \
  XX(EMSGSIZE, -3004, "payload too large for one message")                     \
  XX(ETIMEDOUT, -3005, "timed out")                                            \
  XX(EAGAIN, -3006, "operation would block")                                   \
  XX(ECANCELED, -3007, "operation canceled")                                   \
  XX(EINVAL, -3008, "invalid argument")                                        \
  XX(ENOTSOCK, -3009, "not a socket")                                          \
  XX(EBADF, -3010, "not a valid descriptor or handle")                         \
  XX(ENOMEM, -3011, "out of memory")                                           \
  XX(EMFILE, -3012, "too many open descriptors or handles in this process")    \
  XX(EADDRINUSE, -3013, "endpoint name already in use")                        \
  XX(ENOENT, -3014, "no such endpoint")                                        \
  XX(ECONNREFUSED, -3015, "connection refused")                                \
  XX(EACCES, -3016, "permission denied")                                       \
  XX(ENAMETOOLONG, -3017, "endpoint name too long")                            \
  XX(EPROTO, -3018, "protocol error: malformed message from peer")             \
  XX(ENOTSUP, -3019, "operation not supported on this channel or OS")          \
  XX(EPERM, -3020, "peer refused by the peer check")                           \
  XX(EWINSOCK, -3021, "Winsock could not be initialized")                      \
  XX(ESYS, -3022, "unknown system error")

typedef enum {
#define SOCKPASS__ENUM(name, value, text) SOCKPASS_##name = value,
  SOCKPASS_ERRNO_MAP(SOCKPASS__ENUM)
#undef SOCKPASS__ENUM
  SOCKPASS_SYSERR_BASE = -100000
} sockpass_errno_t;

/* An OS error code with no SOCKPASS_E* of its own, and back again. */
#define SOCKPASS_SYSERR(code) (SOCKPASS_SYSERR_BASE - (int)(code))
/* The OS code inside err when err is a SOCKPASS_SYSERR(), else 0. */
SOCKPASS_EXTERN int sockpass_syserr(int err);

/* A static, human-readable message for err. Never NULL; an unknown code gives
 * a static "unknown error" text. Thread-safe. errno / GetLastError() are kept. */
SOCKPASS_EXTERN const char *sockpass_strerror(int err);
/* The code's name without prefix, such as "EOF" or "ETIMEDOUT"; "OK" for 0,
 * "SYSERR" for SOCKPASS_SYSERR() values and "UNKNOWN" for anything else. */
SOCKPASS_EXTERN const char *sockpass_err_name(int err);

/* ---- Channels ----
 * A channel is a connected endpoint that carries messages. Closing it closes
 * its OS handle. Every function here may be called from any thread.
 */

/* Two connected channels in this process. On success *a and *b are handed
 * over (close each with sockpass_close). On error neither is set. */
SOCKPASS_EXTERN int sockpass_pair(sockpass_chan_t **a, sockpass_chan_t **b);

/* Listen on a named endpoint. POSIX: a filesystem path, created with mode
 * 0600; on Linux "@name" is the abstract namespace. A path holding a stale
 * socket is replaced; anything else there gives SOCKPASS_EADDRINUSE.
 * Windows: "\\.\pipe\name" or a bare "name" meaning that. The listener is
 * handed over; accept on it, close it with sockpass_close (which also removes
 * the socket file it created). */
SOCKPASS_EXTERN int sockpass_listen(const char *name, sockpass_chan_t **listener);

/* Wait for a peer on a listener (honours the listener's timeout and cancel)
 * and hand over a connected channel. */
SOCKPASS_EXTERN int sockpass_accept(sockpass_chan_t *listener, sockpass_chan_t **chan);

/* Connect to a named endpoint. SOCKPASS_ENOENT when no such endpoint exists,
 * SOCKPASS_ECONNREFUSED when it exists but nobody listens (a stale socket
 * file, an unused Linux "@name"). The channel is handed over. */
SOCKPASS_EXTERN int sockpass_connect(const char *name, sockpass_chan_t **chan);

/* Make a channel of an existing OS handle (inherited, received, made by hand).
 * POSIX: an AF_UNIX socket of type SOCK_SEQPACKET, SOCK_DGRAM or SOCK_STREAM;
 * on a stream the message boundaries are the stream's. Windows: a pipe HANDLE.
 * Takes ownership of handle: it is closed by sockpass_close, or at once when
 * the call fails. */
SOCKPASS_EXTERN int sockpass_open(sockpass_handle_t handle, sockpass_chan_t **chan);

/* The channel's OS handle, borrowed: for poll/WaitFor* loops, and to hand the
 * end to a child by inheritance (marking it inheritable for that moment).
 * Do not close it, read from it or write to it. */
SOCKPASS_EXTERN sockpass_handle_t sockpass_handle(sockpass_chan_t *chan);

/* Readiness, for a caller's own wait loop (poll, WaitForMultipleObjects, an
 * event loop). Sets *h to the OS object that becomes ready when
 * sockpass_recv (on a listener: sockpass_accept) has something to return
 * without waiting: a message, an error, or the end of the channel.
 *   POSIX: the channel's descriptor (the same as sockpass_handle); wait for
 *   POLLIN. Messages queued in the kernel make it ready; the library keeps
 *   none of its own.
 *   Windows: a manual-reset event, for WaitForSingleObject and
 *   WaitForMultipleObjects. The call arms it: it starts an overlapped read
 *   of the pipe (on a listener: an overlapped ConnectNamedPipe) and signals
 *   the event at once when a whole message is already buffered in the
 *   library. Call it again before every wait, from a thread that lives until
 *   the wait ends (Windows cancels a thread's pending I/O when it exits).
 * A wake is a hint: receive with a SOCKPASS_NONBLOCK timeout afterwards and
 * expect SOCKPASS_EAGAIN at times (another thread took the message, or only
 * the channel's own control traffic arrived). The object is borrowed: do not
 * close, read or reset it. SOCKPASS_EINVAL for a NULL argument. */
SOCKPASS_EXTERN int sockpass_ready_handle(sockpass_chan_t *chan, sockpass_handle_t *h);

/* Close the channel and its OS handle. NULL is ignored. No call may be using
 * the channel (cancel and join such calls first). */
SOCKPASS_EXTERN void sockpass_close(sockpass_chan_t *chan);

/* ---- Waiting ---- */
#define SOCKPASS_WAIT_FOREVER (-1)
#define SOCKPASS_NONBLOCK 0

/* How long sockpass_send, sockpass_recv and sockpass_accept may wait on this
 * channel: SOCKPASS_WAIT_FOREVER (the default), SOCKPASS_NONBLOCK (return
 * SOCKPASS_EAGAIN at once), or a number of milliseconds (SOCKPASS_ETIMEDOUT). */
SOCKPASS_EXTERN int sockpass_set_timeout(sockpass_chan_t *chan, int timeout_ms);

/* The same for sockpass_send alone, leaving receives and accepts as they
 * are: a channel whose receives never wait (driven by sockpass_ready_handle)
 * can still have sends that wait for room. sockpass_set_timeout sets both. */
SOCKPASS_EXTERN int sockpass_set_send_timeout(sockpass_chan_t *chan, int timeout_ms);

/* From any thread: wake every call waiting on chan with SOCKPASS_ECANCELED,
 * and make every later wait on chan return it too, until
 * sockpass_cancel_clear(chan). The channel and its OS handle stay open. */
SOCKPASS_EXTERN int sockpass_cancel(sockpass_chan_t *chan);
SOCKPASS_EXTERN int sockpass_cancel_clear(sockpass_chan_t *chan);

/* ---- Messages ---- */

/* Send nsocks sockets and len bytes of data as one message. The sockets are
 * borrowed: the caller still owns and closes its copies. nsocks may be 0 and
 * len may be 0, not both; nsocks <= SOCKPASS_MAX_SOCKS (else
 * SOCKPASS_ETOOMANY) and len <= SOCKPASS_MAX_PAYLOAD (else SOCKPASS_EMSGSIZE).
 * All or nothing: on error nothing of the message reached the peer. Never
 * raises SIGPIPE; a closed peer gives SOCKPASS_EOF. */
SOCKPASS_EXTERN int sockpass_send(sockpass_chan_t *chan, const sockpass_sock_t *socks,
                                  size_t nsocks, const void *data, size_t len);

/* Receive one message. *nsocks and *len are the room in socks and buf on
 * input and the counts received on output; socks/buf may be NULL when the
 * room is 0. The received sockets are handed over (close-on-exec, not
 * inheritable). A message that does not fit is consumed and dropped: every
 * socket in it is closed and SOCKPASS_ETRUNC returned; the channel stays
 * usable. SOCKPASS_EMFILE when this process has no room for the sockets
 * (they are dropped). SOCKPASS_EOF when the peer has closed. On error
 * *nsocks is 0 and no socket is handed over. */
SOCKPASS_EXTERN int sockpass_recv(sockpass_chan_t *chan, sockpass_sock_t *socks,
                                  size_t *nsocks, void *buf, size_t *len);

/* ---- Sockets that arrived by any other route ---- */

/* Make a socket value that arrived by inheritance, on the command line, in
 * the environment or as a standard handle ready for use in this process:
 * checks that it is a socket (SOCKPASS_ENOTSOCK for a file or pipe,
 * SOCKPASS_EBADF for a dead value), makes it close-on-exec / non-inheritable,
 * and on Windows initializes Winsock first. On success *sock is the socket to
 * use from now on (on Windows it may differ from raw, and raw is then closed);
 * the caller owns it. On error raw is left as it was. */
SOCKPASS_EXTERN int sockpass_adopt(sockpass_sock_t raw, sockpass_sock_t *sock);

/* Close a socket the caller owns (close() or closesocket()). */
SOCKPASS_EXTERN int sockpass_close_sock(sockpass_sock_t sock);

/* ---- Peer identity ---- */
typedef struct {
  long pid; /* the peer's process id, or -1 when the OS cannot tell */
  long uid; /* the peer's user id (POSIX), or -1 when unknown / on Windows */
} sockpass_peer_t;

/* The process at the other end, as the OS reports it (SO_PEERCRED,
 * getpeereid, LOCAL_PEERCRED) or, on Windows, as the channel handshake told.
 * POSIX records it when the connection is made: for a sockpass_pair, that is
 * the process that made the pair, even after an end went to a child. */
SOCKPASS_EXTERN int sockpass_peer(sockpass_chan_t *chan, sockpass_peer_t *peer);

/* ---- Peer check ----
 * Who may be at the other end of a channel, checked with what the OS
 * reports (SO_PEERCRED / getpeereid; on Windows the pipe's client or server
 * process id and its token's user), never with what the peer says.
 */
#define SOCKPASS_PEER_ANY 0       /* no check */
#define SOCKPASS_PEER_SAME_USER 1 /* the peer runs as this process's user */
#define SOCKPASS_PEER_PID 2       /* the peer is process pid */

/* On a listener: every later sockpass_accept closes a connection whose peer
 * fails the check, before anything is sent or received on it, and goes on
 * waiting (within the listener's timeout). Listeners start with
 * SOCKPASS_PEER_SAME_USER. On a connected channel: checks the peer now and
 * returns SOCKPASS_EPERM when it fails (the channel stays open; close it).
 * SOCKPASS_EINVAL for an unknown mode or a pid <= 0 with SOCKPASS_PEER_PID;
 * SOCKPASS_ENOTSUP where the OS cannot tell the peer. */
SOCKPASS_EXTERN int sockpass_set_peer_check(sockpass_chan_t *chan, int mode, long pid);

/* ---- Starting a program with sockets (docs/inherit.md) ----
 * A child started by sockpass_spawn inherits the sockets listed, in order,
 * and nothing else of this process: no other descriptor or handle, whatever
 * its close-on-exec or inheritable flag, and nothing another thread is
 * spawning at the same moment. It finds them with sockpass_inherited().
 * POSIX speaks systemd's socket-activation protocol: the sockets become
 * descriptors 3, 4, ... and LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES say so.
 * Windows uses the same idea with handle values in SOCKPASS_* variables.
 */
typedef struct sockpass_proc sockpass_proc_t;

typedef struct {
  /* The sockets the child inherits, in this order (borrowed; the caller keeps
   * its copies). nsocks <= SOCKPASS_MAX_SOCKS. */
  const sockpass_sock_t *socks;
  size_t nsocks;
  /* NULL, or nsocks names the child reads with sockpass_inherited_name():
   * 1 to 255 printable ASCII characters each, no ':' (systemd's rule). */
  const char *const *names;
  /* NULL, or a channel end the child gets with sockpass_inherited_chan().
   * On success the end belongs to the child and is closed here without
   * telling its peer; on error it stays the caller's. */
  sockpass_chan_t *chan;
  /* SOCKPASS_INVALID_SOCK, or a socket that becomes the child's stdin and
   * stdout (inetd mode; stderr stays this process's). On Windows the child
   * gets a non-overlapped copy, so ReadFile / WriteFile work on it. */
  sockpass_sock_t stdio;
  /* 0. Reserved for flags. */
  unsigned int flags;
} sockpass_spawn_opts_t;

/* Fill opts with the defaults: no sockets, no channel, no stdio socket. */
SOCKPASS_EXTERN void sockpass_spawn_opts_init(sockpass_spawn_opts_t *opts);

/* Start program file with arguments argv (argv[0] included, NULL-terminated).
 * A file without a directory part is searched for in PATH (on Windows with
 * ".exe" added when it has no extension). The child has this process's
 * environment and standard handles, except as opts says; on POSIX its signal
 * mask is empty and every signal has its default action.
 * SOCKPASS_ENOENT when the program does not exist, SOCKPASS_EACCES when it
 * may not be run, SOCKPASS_EBADF / SOCKPASS_ENOTSOCK for a bad socket in
 * opts, SOCKPASS_EINVAL for a bad name or flag. On success *proc is handed
 * over: wait for it, stop it, free it. */
SOCKPASS_EXTERN int sockpass_spawn(const char *file, const char *const *argv,
                                   const sockpass_spawn_opts_t *opts, sockpass_proc_t **proc);

/* The child's process id. */
SOCKPASS_EXTERN long sockpass_proc_pid(const sockpass_proc_t *proc);

/* Wait up to timeout_ms (SOCKPASS_WAIT_FOREVER, SOCKPASS_NONBLOCK or ms) for
 * the child to end: 0 and *exit_code set (the exit status; on POSIX 128 + the
 * signal number when a signal ended it), or SOCKPASS_ETIMEDOUT /
 * SOCKPASS_EAGAIN while it runs. After it ended, later calls give the same
 * code again. exit_code may be NULL. */
SOCKPASS_EXTERN int sockpass_proc_wait(sockpass_proc_t *proc, int timeout_ms, int *exit_code);

/* Ask the child to stop: SIGTERM on POSIX, TerminateProcess (exit code 1) on
 * Windows, which has no polite stop for an arbitrary program. 0 also when it
 * has already ended. Wait for it afterwards. */
SOCKPASS_EXTERN int sockpass_proc_kill(sockpass_proc_t *proc);

/* Release proc. It neither waits nor stops the child; on POSIX a child that
 * was not waited for stays a zombie until this process reaps it. NULL is
 * ignored. */
SOCKPASS_EXTERN void sockpass_proc_free(sockpass_proc_t *proc);

/* ---- In a started program: what the starter gave ----
 * The first call of any of these three reads the environment once for the
 * whole process, removes the variables (so the program's own children do not
 * see them), and adopts each socket as sockpass_adopt does (close-on-exec /
 * not inheritable; Winsock initialized). Later calls report the same result.
 * It works under systemd socket activation, systemd-socket-activate,
 * sockpass-run and sockpass_spawn. Like getenv, the first call must not race
 * with another thread changing the environment.
 */

/* The inherited sockets. *nsocks is the room in socks on input and the count
 * on output; no sockets at all is a count of 0, not an error. With too little
 * room: SOCKPASS_ETRUNC, *nsocks the count needed, nothing lost (call again).
 * The sockets are handed over the first time they are returned; later calls
 * return the same values. SOCKPASS_ENOTSOCK (or SOCKPASS_EBADF) when an
 * inherited descriptor is not a socket; SOCKPASS_EPROTO when the variables
 * are malformed. */
SOCKPASS_EXTERN int sockpass_inherited(sockpass_sock_t *socks, size_t *nsocks);

/* The name of inherited socket index (LISTEN_FDNAMES), "unknown" when the
 * starter gave none (systemd's convention), or NULL when index is out of
 * range. The string is static. */
SOCKPASS_EXTERN const char *sockpass_inherited_name(size_t index);

/* The channel end the starter gave (sockpass_spawn_opts_t.chan), handed over
 * once; SOCKPASS_ENOENT when there is none or it was already taken. */
SOCKPASS_EXTERN int sockpass_inherited_chan(sockpass_chan_t **chan);

#ifdef __cplusplus
}
#endif

#endif /* SOCKPASS_H */
