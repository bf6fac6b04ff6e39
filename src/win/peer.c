/* SPDX-License-Identifier: MIT */
/* Windows peer check: who is at the other end of a pipe, by what the OS
 * says (the pipe's client or server process id, that process's token),
 * never by what the peer announced in its HELLO. */
#include "win.h"

/* The user SID of process pid's token, copied into buf. */
static int sp_process_user(DWORD pid, unsigned char *buf, DWORD size) {
  HANDLE proc, tok = NULL;
  DWORD got = 0;
  int rc = 0;
  proc = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
  if (proc == NULL)
    return SOCKPASS_EPERM; /* a process we may not even look at is not ours */
  if (!OpenProcessToken(proc, TOKEN_QUERY, &tok) ||
      !GetTokenInformation(tok, TokenUser, buf, size, &got))
    rc = GetLastError() == ERROR_ACCESS_DENIED ? SOCKPASS_EPERM : sp__win_error();
  if (tok != NULL)
    CloseHandle(tok);
  CloseHandle(proc);
  return rc;
}

int sp__pipe_peer_ok(HANDLE pipe, int mode, long pid) {
  /* A TOKEN_USER holds a SID of at most SECURITY_MAX_SID_SIZE bytes. */
  unsigned char mine[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
  unsigned char theirs[sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE];
  DWORD flags = 0;
  ULONG peer = 0;
  BOOL ok;
  int rc;
  if (mode == SOCKPASS_PEER_ANY)
    return 0;
  if (!GetNamedPipeInfo(pipe, &flags, NULL, NULL, NULL))
    return sp__win_error();
  ok = (flags & PIPE_SERVER_END) ? GetNamedPipeClientProcessId(pipe, &peer)
                                 : GetNamedPipeServerProcessId(pipe, &peer);
  if (!ok)
    return sp__win_error();
  if (mode == SOCKPASS_PEER_PID)
    return (long)peer == pid ? 0 : SOCKPASS_EPERM;
  if (peer == GetCurrentProcessId())
    return 0;
  if ((rc = sp_process_user(GetCurrentProcessId(), mine, sizeof mine)) < 0 ||
      (rc = sp_process_user(peer, theirs, sizeof theirs)) < 0)
    return rc;
  return EqualSid(((TOKEN_USER *)mine)->User.Sid, ((TOKEN_USER *)theirs)->User.Sid)
             ? 0
             : SOCKPASS_EPERM;
}
