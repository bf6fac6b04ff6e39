/* SPDX-License-Identifier: MIT */
/* Internals shared by the Windows backend's files. */
#ifndef SOCKPASS_WIN_H
#define SOCKPASS_WIN_H

#include <winsock2.h>
#include <windows.h>

#include <stdint.h>

#include "platform.h"

/* One socket on the wire: the WSAPROTOCOL_INFOW that WSADuplicateSocketW
 * fills for the target process. It holds no pointers, so 32- and 64-bit
 * processes agree on its 628 bytes. */
#define SP_REC_SIZE ((uint32_t)sizeof(WSAPROTOCOL_INFOW))

/* Make sure WSAStartup(2.2) has succeeded once in this process. The
 * reference is never given back (no WSACleanup). Thread-safe; cheap after
 * the first call. 0 or SOCKPASS_EWINSOCK. */
int sp__wsa_init(void);

/* GetLastError() / WSAGetLastError() as a SOCKPASS_E* code. */
int sp__win_error(void);
int sp__wsa_error(void);

/* Fill rec (SP_REC_SIZE bytes) so that process pid can rebuild s. On
 * success a handle for pid exists at once, whether or not pid claims it. */
int sp__sock_dup(SOCKET s, DWORD pid, unsigned char *rec);

/* Claim a socket from a record duplicated for this process: overlapped,
 * not inheritable. */
int sp__sock_rebuild(const unsigned char *rec, SOCKET *out);

/* Claim and close every socket of n records: for messages that are
 * dropped, so nothing stays open in this process. */
void sp__sock_drop(const unsigned char *recs, size_t n);

/* Whether the process at the other end of pipe passes the peer check
 * (SOCKPASS_PEER_*): 0, SOCKPASS_EPERM, or an error. */
int sp__pipe_peer_ok(HANDLE pipe, int mode, long pid);

#endif /* SOCKPASS_WIN_H */
