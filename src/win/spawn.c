/* SPDX-License-Identifier: MIT */
/* Windows: start a program with a chosen list of sockets (CreateProcessW
 * with PROC_THREAD_ATTRIBUTE_HANDLE_LIST) and, in the started program, read
 * what the starter gave (the SOCKPASS_* variables). See docs/inherit.md. */
#include "win.h"

#include <stdlib.h>
#include <string.h>
#include <wchar.h>

struct sockpass_proc {
  HANDLE process;
  DWORD pid;
  int done;
  int code;
};

/* The variables sockpass_spawn sets and sockpass_inherited reads, in this
 * order; unset is the _putenv argument that removes one from the CRT's copy. */
enum { SP_VAR_PPID, SP_VAR_SOCKETS, SP_VAR_NAMES, SP_VAR_CHANNEL, SP_NVARS };
static const struct {
  const wchar_t *name;
  const char *unset;
} sp_vars[SP_NVARS] = {{L"SOCKPASS_PPID", "SOCKPASS_PPID="},
                       {L"SOCKPASS_SOCKETS", "SOCKPASS_SOCKETS="},
                       {L"SOCKPASS_NAMES", "SOCKPASS_NAMES="},
                       {L"SOCKPASS_CHANNEL", "SOCKPASS_CHANNEL="}};

/* ---- Strings ---- */

/* UTF-8 to a malloc'd wide string. */
static int sp_wide(const char *s, wchar_t **out) {
  int n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, NULL, 0);
  if (n <= 0)
    return SOCKPASS_EINVAL;
  *out = malloc((size_t)n * sizeof **out);
  if (*out == NULL)
    return SOCKPASS_ENOMEM;
  MultiByteToWideChar(CP_UTF8, 0, s, -1, *out, n);
  return 0;
}

/* Append v in decimal at p; returns the end. No printf: its wide formats
 * for 64-bit numbers differ between the C runtimes. */
static wchar_t *sp_wdec(wchar_t *p, unsigned long long v) {
  wchar_t tmp[24];
  size_t n = 0;
  do {
    tmp[n++] = (wchar_t)(L'0' + v % 10);
    v /= 10;
  } while (v > 0);
  while (n > 0)
    *p++ = tmp[--n];
  return p;
}

static wchar_t *sp_wcopy(wchar_t *p, const wchar_t *s) {
  while (*s != 0)
    *p++ = *s++;
  return p;
}

/* ---- Checking what the caller gave ---- */

static int sp_check_sock(SOCKET s) {
  int type = 0, tl = (int)sizeof type;
  DWORD hflags;
  if (getsockopt(s, SOL_SOCKET, SO_TYPE, (char *)&type, &tl) == 0)
    return 0;
  /* Every socket of the base providers is a handle: a value that is no
   * handle at all is a dead one, a live handle of another kind no socket. */
  return GetHandleInformation((HANDLE)s, &hflags) ? SOCKPASS_ENOTSOCK : SOCKPASS_EBADF;
}

/* Does the last path component have an extension? */
static int sp_has_ext(const wchar_t *path) {
  const wchar_t *dot = NULL;
  for (; *path != 0; path++) {
    if (*path == L'\\' || *path == L'/' || *path == L':')
      dot = NULL;
    else if (*path == L'.')
      dot = path;
  }
  return dot != NULL;
}

/* The program to run, as CreateProcessW's lpApplicationName. A name with a
 * directory or drive part is taken as it is (with ".exe" added when only
 * that exists); a bare name is searched for as CreateProcessW would (the
 * program's directory, the current one, the system's, then PATH). */
static int sp_program(const char *file, wchar_t **out) {
  wchar_t *w, *buf, *alt;
  DWORD n, room = MAX_PATH, attrs, err;
  size_t len;
  int rc;
  if ((rc = sp_wide(file, &w)) < 0)
    return rc;
  if (strpbrk(file, "\\/:") != NULL) {
    attrs = GetFileAttributesW(w);
    err = GetLastError();
    if (attrs == INVALID_FILE_ATTRIBUTES && !sp_has_ext(w) &&
        (err == ERROR_FILE_NOT_FOUND || err == ERROR_PATH_NOT_FOUND)) {
      len = wcslen(w);
      alt = realloc(w, (len + 5) * sizeof *w);
      if (alt == NULL) {
        free(w);
        return SOCKPASS_ENOMEM;
      }
      w = alt;
      memcpy(w + len, L".exe", 5 * sizeof *w);
      attrs = GetFileAttributesW(w);
      err = GetLastError();
    }
    if (attrs == INVALID_FILE_ATTRIBUTES || (attrs & FILE_ATTRIBUTE_DIRECTORY) != 0) {
      free(w);
      return attrs == INVALID_FILE_ATTRIBUTES ? sp__translate((int)err) : SOCKPASS_EACCES;
    }
    *out = w;
    return 0;
  }
  for (;;) {
    buf = malloc(room * sizeof *buf);
    if (buf == NULL) {
      free(w);
      return SOCKPASS_ENOMEM;
    }
    n = SearchPathW(NULL, w, L".exe", room, buf, NULL);
    if (n == 0 || n < room)
      break;
    free(buf);
    room = n; /* too small: n is the size needed */
  }
  free(w);
  if (n == 0) {
    free(buf);
    return SOCKPASS_ENOENT;
  }
  *out = buf;
  return 0;
}

/* ---- The command line ---- */

/* argv as one command line that CommandLineToArgvW and the C runtimes split
 * back into the same strings. argv[0] follows the rule for the program
 * name: quoted whole, with no escapes, so it may not contain a quote. */
static int sp_cmdline(const char *const *argv, wchar_t **out) {
  size_t i, room = 1, len = 0, bs;
  const char *a;
  char *s;
  int rc;
  if (strchr(argv[0], '"') != NULL)
    return SOCKPASS_EINVAL;
  for (i = 0; argv[i] != NULL; i++)
    room += 2 * strlen(argv[i]) + 3; /* every character escaped, quotes, space */
  s = malloc(room);
  if (s == NULL)
    return SOCKPASS_ENOMEM;
  for (i = 0; argv[i] != NULL; i++) {
    a = argv[i];
    if (i > 0)
      s[len++] = ' ';
    if (a[0] != '\0' && strpbrk(a, " \t\n\v\"") == NULL) {
      memcpy(s + len, a, strlen(a));
      len += strlen(a);
      continue;
    }
    s[len++] = '"';
    if (i == 0) {
      memcpy(s + len, a, strlen(a));
      len += strlen(a);
    } else {
      /* Backslashes are literal unless a quote follows: then each is
       * doubled, and the quote escaped. The closing quote counts too. */
      for (;; a++) {
        for (bs = 0; *a == '\\'; a++)
          bs++;
        if (*a == '\0' || *a == '"') {
          memset(s + len, '\\', 2 * bs + (*a == '"'));
          len += 2 * bs + (*a == '"');
          if (*a == '\0')
            break;
        } else {
          memset(s + len, '\\', bs);
          len += bs;
        }
        s[len++] = *a;
      }
    }
    s[len++] = '"';
  }
  s[len] = '\0';
  rc = sp_wide(s, out);
  free(s);
  return rc;
}

/* ---- The environment block ---- */

/* Compare two "NAME=value" entries by name, without regard to case, the
 * order Windows keeps an environment in. A leading '=' belongs to the name
 * ("=C:=C:\dir"). */
static int sp_env_cmp(const void *pa, const void *pb) {
  const wchar_t *a = *(const wchar_t *const *)pa, *b = *(const wchar_t *const *)pb;
  const wchar_t *ea = wcschr(a + 1, L'='), *eb = wcschr(b + 1, L'=');
  int la = ea != NULL ? (int)(ea - a) : (int)wcslen(a);
  int lb = eb != NULL ? (int)(eb - b) : (int)wcslen(b);
  return CompareStringOrdinal(a, la, b, lb, TRUE) - CSTR_EQUAL;
}

static int sp_is_var(const wchar_t *entry) {
  size_t i, n;
  for (i = 0; i < SP_NVARS; i++) {
    n = wcslen(sp_vars[i].name);
    if (entry[n] == L'=' && CompareStringOrdinal(entry, (int)n, sp_vars[i].name, (int)n, TRUE) ==
                                CSTR_EQUAL)
      return 1;
  }
  return 0;
}

/* This process's environment without stale copies of the variables, plus
 * the new ones when sockets or a channel go to the child; sorted. */
static int sp_env_block(const HANDLE *socks, size_t nsocks, const char *names, HANDLE chan,
                        wchar_t **out) {
  wchar_t *base, *extra = NULL, *p, *block = NULL, *wnames = NULL;
  const wchar_t **entries = NULL;
  size_t n = 0, k = 0, i, total = 1;
  int rc = SOCKPASS_ENOMEM;

  base = GetEnvironmentStringsW();
  if (base == NULL)
    return SOCKPASS_ENOMEM;
  for (p = base; *p != 0; p += wcslen(p) + 1)
    n++;
  entries = malloc((n + SP_NVARS) * sizeof *entries);
  if (entries == NULL)
    goto done;
  for (p = base; *p != 0; p += wcslen(p) + 1)
    if (!sp_is_var(p))
      entries[k++] = p;
  if (nsocks > 0 || chan != NULL) {
    if (names != NULL && (rc = sp_wide(names, &wnames)) < 0)
      goto done;
    /* Every number has at most 20 digits and a separator. */
    extra = malloc((128 + 21 * nsocks + (wnames != NULL ? wcslen(wnames) : 0)) * sizeof *extra);
    if (extra == NULL) {
      rc = SOCKPASS_ENOMEM;
      goto done;
    }
    p = extra;
    entries[k++] = p;
    p = sp_wdec(sp_wcopy(p, L"SOCKPASS_PPID="), GetCurrentProcessId());
    *p++ = 0;
    if (nsocks > 0) {
      entries[k++] = p;
      p = sp_wcopy(p, L"SOCKPASS_SOCKETS=");
      for (i = 0; i < nsocks; i++) {
        if (i > 0)
          *p++ = L';';
        p = sp_wdec(p, (uintptr_t)socks[i]);
      }
      *p++ = 0;
    }
    if (wnames != NULL) {
      entries[k++] = p;
      p = sp_wcopy(sp_wcopy(p, L"SOCKPASS_NAMES="), wnames);
      *p++ = 0;
    }
    if (chan != NULL) {
      entries[k++] = p;
      p = sp_wdec(sp_wcopy(p, L"SOCKPASS_CHANNEL="), (uintptr_t)chan);
      *p++ = 0;
    }
  }
  qsort(entries, k, sizeof *entries, sp_env_cmp);
  for (i = 0; i < k; i++)
    total += wcslen(entries[i]) + 1;
  block = malloc((total + 1) * sizeof *block); /* + 1: an empty block is two NULs */
  if (block == NULL) {
    rc = SOCKPASS_ENOMEM;
    goto done;
  }
  p = block;
  for (i = 0; i < k; i++) {
    p = sp_wcopy(p, entries[i]);
    *p++ = 0;
  }
  *p++ = 0;
  if (k == 0)
    *p = 0;
  *out = block;
  rc = 0;
done:
  FreeEnvironmentStringsW(base);
  free(entries);
  free(extra);
  free(wnames);
  return rc;
}

/* ---- Handles for the child ---- */

/* Everything one spawn hands down: its own inheritable duplicates, so that
 * a spawn in another thread never lists them. */
typedef struct {
  HANDLE socks[SOCKPASS_MAX_SOCKS];
  size_t nsocks;
  HANDLE chan;
  SOCKET io;     /* inetd mode: the non-overlapped copy, or INVALID_SOCKET */
  HANDLE std[3]; /* the child's stdin, stdout, stderr (io counts as a std) */
  HANDLE list[SOCKPASS_MAX_SOCKS + 4];
  size_t nlist;
} sp_kids_t;

/* An inheritable duplicate of h in this process, or NULL. */
static HANDLE sp_dup_inherit(HANDLE h) {
  HANDLE self = GetCurrentProcess(), d;
  if (!DuplicateHandle(self, h, self, &d, 0, TRUE, DUPLICATE_SAME_ACCESS))
    return NULL;
  return d;
}

/* Add h to the handle list once. Windows 7's console handles are not
 * kernel handles (their low bits are 3): the console reaches the child its
 * own way, and listing them makes CreateProcessW fail. */
static void sp_list_add(sp_kids_t *k, HANDLE h) {
  size_t i;
  if (h == NULL || h == INVALID_HANDLE_VALUE || ((uintptr_t)h & 3) == 3)
    return;
  for (i = 0; i < k->nlist; i++)
    if (k->list[i] == h)
      return;
  k->list[k->nlist++] = h;
}

/* A copy of s without the overlapped attribute, inheritable: ReadFile and
 * WriteFile on a standard handle need one (see "inetd mode"). */
static int sp_io_copy(SOCKET s, SOCKET *out) {
  WSAPROTOCOL_INFOW info;
  SOCKET c;
  if (WSADuplicateSocketW(s, GetCurrentProcessId(), &info) != 0)
    return sp__wsa_error();
  c = WSASocketW(FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, FROM_PROTOCOL_INFO, &info, 0, 0);
  if (c == INVALID_SOCKET)
    return sp__wsa_error();
  if (!SetHandleInformation((HANDLE)c, HANDLE_FLAG_INHERIT, HANDLE_FLAG_INHERIT)) {
    int rc = sp__win_error();
    closesocket(c);
    return rc;
  }
  *out = c;
  return 0;
}

/* This process's standard handle, duplicated for the child. A handle that
 * cannot be duplicated (a GUI program's stale value) is left out, as a
 * missing one is: the child then has none there. */
static HANDLE sp_std_dup(DWORD which) {
  HANDLE h = GetStdHandle(which);
  if (h == NULL || h == INVALID_HANDLE_VALUE)
    return NULL;
  return sp_dup_inherit(h);
}

static int sp_kids_make(sp_kids_t *k, const sockpass_spawn_opts_t *o) {
  size_t i;
  int rc;
  for (i = 0; i < o->nsocks; i++) {
    if ((k->socks[i] = sp_dup_inherit((HANDLE)o->socks[i])) == NULL)
      return sp__win_error();
    k->nsocks++;
    sp_list_add(k, k->socks[i]);
  }
  if (o->chan != NULL) {
    if ((k->chan = sp_dup_inherit(sp__handle(o->chan))) == NULL)
      return sp__win_error();
    sp_list_add(k, k->chan);
  }
  if (o->stdio != SOCKPASS_INVALID_SOCK) {
    if ((rc = sp_io_copy(o->stdio, &k->io)) < 0)
      return rc;
    k->std[0] = k->std[1] = (HANDLE)k->io;
  } else {
    k->std[0] = sp_std_dup(STD_INPUT_HANDLE);
    k->std[1] = sp_std_dup(STD_OUTPUT_HANDLE);
  }
  k->std[2] = sp_std_dup(STD_ERROR_HANDLE);
  for (i = 0; i < 3; i++)
    sp_list_add(k, k->std[i]);
  return 0;
}

/* In the parent every duplicate goes once CreateProcessW has returned: the
 * child has its own copies or there is no child. */
static void sp_kids_close(sp_kids_t *k) {
  size_t i;
  for (i = 0; i < k->nsocks; i++)
    CloseHandle(k->socks[i]);
  if (k->chan != NULL)
    CloseHandle(k->chan);
  if (k->io != INVALID_SOCKET)
    closesocket(k->io);
  for (i = 0; i < 3; i++)
    if (k->std[i] != NULL && k->std[i] != (HANDLE)k->io)
      CloseHandle(k->std[i]);
}

/* ---- Spawning ---- */

static int sp_job_adopt(const PROCESS_INFORMATION *pi);

int sp__spawn(const char *file, const char *const *argv, const sockpass_spawn_opts_t *o,
              const char *names, sockpass_proc_t **out) {
  int kill_with_parent = (o->flags & SOCKPASS_SPAWN_KILL_WITH_PARENT) != 0;
  sp_kids_t k;
  STARTUPINFOEXW si;
  PROCESS_INFORMATION pi;
  SIZE_T attr_size = 0;
  wchar_t *app = NULL, *cmd = NULL, *env = NULL;
  sockpass_proc_t *p = NULL;
  size_t i;
  int rc;

  memset(&k, 0, sizeof k);
  k.io = INVALID_SOCKET;
  memset(&si, 0, sizeof si);
  if ((rc = sp__wsa_init()) < 0)
    return rc;
  for (i = 0; i < o->nsocks; i++)
    if ((rc = sp_check_sock(o->socks[i])) < 0)
      return rc;
  if (o->stdio != SOCKPASS_INVALID_SOCK && (rc = sp_check_sock(o->stdio)) < 0)
    return rc;
  /* A channel whose handle the caller closed behind the library's back. */
  if (o->chan != NULL && GetFileType(sp__handle(o->chan)) != FILE_TYPE_PIPE)
    return SOCKPASS_EINVAL;
  if ((rc = sp_program(file, &app)) < 0 || (rc = sp_cmdline(argv, &cmd)) < 0)
    goto done;
  p = calloc(1, sizeof *p);
  if (p == NULL) {
    rc = SOCKPASS_ENOMEM;
    goto done;
  }
  if ((rc = sp_kids_make(&k, o)) < 0 ||
      (rc = sp_env_block(k.socks, k.nsocks, names, k.chan, &env)) < 0)
    goto done;

  si.StartupInfo.cb = sizeof si;
  si.StartupInfo.dwFlags = STARTF_USESTDHANDLES;
  si.StartupInfo.hStdInput = k.std[0];
  si.StartupInfo.hStdOutput = k.std[1];
  si.StartupInfo.hStdError = k.std[2];
  /* Only the listed handles reach the child, whatever else is inheritable
   * here. An empty list is not allowed: then nothing is inherited at all. */
  if (k.nlist > 0) {
    InitializeProcThreadAttributeList(NULL, 1, 0, &attr_size);
    si.lpAttributeList = malloc(attr_size);
    if (si.lpAttributeList == NULL) {
      rc = SOCKPASS_ENOMEM;
      goto done;
    }
    if (!InitializeProcThreadAttributeList(si.lpAttributeList, 1, 0, &attr_size)) {
      rc = sp__win_error();
      free(si.lpAttributeList);
      si.lpAttributeList = NULL;
      goto done;
    }
    if (!UpdateProcThreadAttribute(si.lpAttributeList, 0, PROC_THREAD_ATTRIBUTE_HANDLE_LIST,
                                   k.list, k.nlist * sizeof k.list[0], NULL, NULL)) {
      rc = sp__win_error();
      goto done;
    }
  }
  if (!CreateProcessW(app, cmd, NULL, NULL, k.nlist > 0,
                      EXTENDED_STARTUPINFO_PRESENT | CREATE_UNICODE_ENVIRONMENT |
                          (kill_with_parent ? CREATE_SUSPENDED : 0),
                      env, NULL, &si.StartupInfo, &pi)) {
    rc = sp__win_error();
    goto done;
  }
  if (kill_with_parent && (rc = sp_job_adopt(&pi)) < 0) {
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    goto done;
  }
  CloseHandle(pi.hThread);
  p->process = pi.hProcess;
  p->pid = pi.dwProcessId;
  if (o->chan != NULL)
    sp__close_quiet(o->chan);
  *out = p;
  p = NULL;
done:
  if (si.lpAttributeList != NULL) {
    DeleteProcThreadAttributeList(si.lpAttributeList);
    free(si.lpAttributeList);
  }
  sp_kids_close(&k);
  free(p);
  free(app);
  free(cmd);
  free(env);
  return rc;
}

long sp__proc_pid(const sockpass_proc_t *p) { return (long)p->pid; }

/* The job of SOCKPASS_SPAWN_KILL_WITH_PARENT children: made once, never
 * closed by this process, so the system closes it, and kills every process
 * in it, when this process ends however it ends. */
static INIT_ONCE sp_job_once = INIT_ONCE_STATIC_INIT;
static HANDLE sp_job;

static BOOL CALLBACK sp_job_make(PINIT_ONCE once, PVOID param, PVOID *ctx) {
  JOBOBJECT_EXTENDED_LIMIT_INFORMATION li;
  HANDLE j = CreateJobObjectW(NULL, NULL);
  (void)once;
  (void)param;
  (void)ctx;
  if (j == NULL)
    return FALSE;
  memset(&li, 0, sizeof li);
  li.BasicLimitInformation.LimitFlags = JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
  if (!SetInformationJobObject(j, JobObjectExtendedLimitInformation, &li, sizeof li)) {
    DWORD err = GetLastError();
    CloseHandle(j);
    SetLastError(err);
    return FALSE;
  }
  sp_job = j;
  return TRUE;
}

/* Put a suspended child into the job, then let it run. On error the child
 * is terminated (it never ran a single instruction of its own). */
static int sp_job_adopt(const PROCESS_INFORMATION *pi) {
  int rc = 0;
  if (!InitOnceExecuteOnce(&sp_job_once, sp_job_make, NULL, NULL) ||
      !AssignProcessToJobObject(sp_job, pi->hProcess))
    rc = sp__win_error();
  if (rc < 0) {
    TerminateProcess(pi->hProcess, 1);
    WaitForSingleObject(pi->hProcess, INFINITE);
    return rc;
  }
  if (ResumeThread(pi->hThread) == (DWORD)-1) {
    rc = sp__win_error();
    TerminateProcess(pi->hProcess, 1);
    WaitForSingleObject(pi->hProcess, INFINITE);
  }
  return rc;
}

int sp__proc_wait(sockpass_proc_t *p, int timeout_ms, int *exit_code) {
  DWORD w, code;
  if (!p->done) {
    w = WaitForSingleObject(p->process, timeout_ms < 0 ? INFINITE : (DWORD)timeout_ms);
    if (w == WAIT_TIMEOUT)
      return timeout_ms == 0 ? SOCKPASS_EAGAIN : SOCKPASS_ETIMEDOUT;
    if (w != WAIT_OBJECT_0 || !GetExitCodeProcess(p->process, &code))
      return sp__win_error();
    p->code = (int)code;
    p->done = 1;
  }
  if (exit_code != NULL)
    *exit_code = p->code;
  return 0;
}

int sp__proc_kill(sockpass_proc_t *p) {
  int rc;
  if (p->done || TerminateProcess(p->process, 1))
    return 0;
  rc = sp__win_error();
  /* An ended process refuses (access denied): that is success here. */
  if (WaitForSingleObject(p->process, 0) == WAIT_OBJECT_0)
    return 0;
  return rc;
}

void sp__proc_free(sockpass_proc_t *p) {
  CloseHandle(p->process);
  free(p);
}

/* ---- In the started program ---- */

/* Read variable v as UTF-8 (malloc'd, NULL when unset) and remove it from
 * the process environment and from the C runtime's copy, so getenv agrees. */
static char *sp_env_take(size_t v, int keep) {
  DWORD room = 0, n;
  wchar_t *w = NULL, *grown;
  char *s = NULL;
  int len;
  /* The first call asks for the size; loop in case the value grows. */
  while ((n = GetEnvironmentVariableW(sp_vars[v].name, w, room)) >= room && n > 0) {
    grown = realloc(w, n * sizeof *w);
    if (grown == NULL)
      break;
    w = grown;
    w[0] = 0;
    room = n;
  }
  if (n < room) {
    len = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    if (len > 0 && (s = malloc((size_t)len)) != NULL)
      WideCharToMultiByte(CP_UTF8, 0, w, -1, s, len, NULL, NULL);
  }
  free(w);
  if (!keep) {
    SetEnvironmentVariableW(sp_vars[v].name, NULL);
    _putenv(sp_vars[v].unset);
  }
  return s;
}

/* A decimal number at *s, up to max: digits only. Advances *s. */
static int sp_parse_dec(const char **s, unsigned long long max, unsigned long long *out) {
  unsigned long long v = 0;
  const char *p = *s;
  if (*p < '0' || *p > '9')
    return -1;
  for (; *p >= '0' && *p <= '9'; p++) {
    if (v > (max - (unsigned)(*p - '0')) / 10)
      return -1;
    v = v * 10 + (unsigned)(*p - '0');
  }
  *s = p;
  *out = v;
  return 0;
}

/* The whole of s as one number. */
static int sp_parse_one(const char *s, unsigned long long max, unsigned long long *out) {
  return sp_parse_dec(&s, max, out) == 0 && *s == '\0' ? 0 : -1;
}

/* The process that started this one. */
typedef LONG(NTAPI *sp_nt_query_process_fn)(HANDLE, int, void *, ULONG, ULONG *);

static DWORD sp_parent_pid(void) {
  /* PROCESS_BASIC_INFORMATION, whose field names differ between SDKs. */
  struct {
    void *exit_status;
    void *peb;
    ULONG_PTR affinity;
    LONG_PTR priority;
    ULONG_PTR pid;
    ULONG_PTR parent_pid;
  } pbi;
  HMODULE ntdll = GetModuleHandleW(L"ntdll.dll");
  FARPROC f = ntdll ? GetProcAddress(ntdll, "NtQueryInformationProcess") : NULL;
  sp_nt_query_process_fn query;
  if (f == NULL)
    return 0;
  query = (sp_nt_query_process_fn)(void (*)(void))f;
  /* 0 = ProcessBasicInformation */
  if (query(GetCurrentProcess(), 0, &pbi, sizeof pbi, NULL) < 0)
    return 0;
  return (DWORD)pbi.parent_pid;
}

/* Adopt the n raw sockets listed in s (already checked to parse). On error
 * the ones adopted so far are closed: nobody else knows their values now
 * that the variable is gone, and adopting may have replaced them. */
static int sp_adopt_all(const char *s, sp_inherit_t *st, size_t n) {
  unsigned long long raw = 0;
  size_t i;
  int rc = 0;
  st->socks = malloc(n * sizeof *st->socks);
  if (st->socks == NULL)
    return SOCKPASS_ENOMEM;
  for (i = 0; i < n; i++, s++) {
    sp_parse_dec(&s, UINTPTR_MAX, &raw);
    if ((rc = sp__adopt((SOCKET)raw, &st->socks[i])) < 0)
      break;
  }
  if (rc == 0) {
    st->nsocks = n;
    return 0;
  }
  while (i > 0)
    closesocket(st->socks[--i]);
  free(st->socks);
  st->socks = NULL;
  return rc;
}

void sp__inherited_read(sp_inherit_t *st) {
  char *val[SP_NVARS];
  unsigned long long ppid, chan;
  const char *s;
  size_t v, n = 0;
  HANDLE h;

  for (v = 0; v < SP_NVARS; v++)
    val[v] = sp_env_take(v, st->keep_env);
  /* Meant for this process? If not, a parent left them: not ours. */
  if (val[SP_VAR_PPID] == NULL || sp_parse_one(val[SP_VAR_PPID], 0xffffffffu, &ppid) < 0 ||
      ppid == 0 || ppid != sp_parent_pid())
    goto done;
  if ((s = val[SP_VAR_SOCKETS]) != NULL && *s != '\0') {
    /* Values separated by ';', nothing else. */
    for (;; s++) {
      unsigned long long raw;
      if (sp_parse_dec(&s, UINTPTR_MAX, &raw) < 0 || ++n > SOCKPASS_MAX_SOCKS ||
          (*s != ';' && *s != '\0')) {
        st->err = SOCKPASS_EPROTO;
        goto done;
      }
      if (*s == '\0')
        break;
    }
  }
  if (val[SP_VAR_CHANNEL] != NULL) {
    if (sp_parse_one(val[SP_VAR_CHANNEL], UINTPTR_MAX, &chan) < 0) {
      st->err = SOCKPASS_EPROTO;
      goto done;
    }
    /* Anything but a pipe is not a channel end: there is none. */
    h = (HANDLE)(uintptr_t)chan;
    if (GetFileType(h) == FILE_TYPE_PIPE) {
      SetHandleInformation(h, HANDLE_FLAG_INHERIT, 0);
      st->chan = h;
    }
  }
  if (!sp__names_match(val[SP_VAR_NAMES], n)) {
    st->err = SOCKPASS_EPROTO; /* the handles are left as they are */
    goto done;
  }
  st->names = val[SP_VAR_NAMES];
  val[SP_VAR_NAMES] = NULL;
  if (n > 0)
    st->err = sp_adopt_all(val[SP_VAR_SOCKETS], st, n);
done:
  for (v = 0; v < SP_NVARS; v++)
    free(val[v]);
}

sockpass_handle_t sp__inherit_take_chan(sp_inherit_t *st) {
  return InterlockedExchangePointer((PVOID volatile *)&st->chan, INVALID_HANDLE_VALUE);
}

/* ---- Once per process ---- */

static INIT_ONCE sp_once_ctl = INIT_ONCE_STATIC_INIT;

/* A function pointer may not travel through a void *: it goes in a box. */
typedef struct {
  void (*fn)(void);
} sp_once_box_t;

static BOOL CALLBACK sp_once_run(PINIT_ONCE once, PVOID param, PVOID *ctx) {
  (void)once;
  (void)ctx;
  ((sp_once_box_t *)param)->fn();
  return TRUE;
}

void sp__once(void (*fn)(void)) {
  sp_once_box_t box;
  box.fn = fn;
  InitOnceExecuteOnce(&sp_once_ctl, sp_once_run, &box, NULL);
}
