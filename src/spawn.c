/* SPDX-License-Identifier: MIT */
/* The portable layer of spawning and of reading what a starter gave:
 * argument checks, names, and the once-per-process state. */
#include <stdlib.h>
#include <string.h>

#include "platform.h"
#ifndef _WIN32
#include <sys/socket.h> /* AF_INET, AF_INET6 */
#endif

void sockpass_spawn_opts_init(sockpass_spawn_opts_t *opts) {
  if (opts == NULL)
    return;
  memset(opts, 0, sizeof *opts);
  opts->stdio = SOCKPASS_INVALID_SOCK;
}

/* systemd's rule for a descriptor name: 1 to 255 printable ASCII
 * characters, no ':' (the separator in LISTEN_FDNAMES). */
static int sp_name_ok(const char *name) {
  size_t n = 0;
  if (name == NULL)
    return 0;
  for (; name[n] != '\0'; n++) {
    unsigned char ch = (unsigned char)name[n];
    if (ch < 0x21 || ch > 0x7e || ch == ':' || n >= 255)
      return 0;
  }
  return n > 0;
}

static int sp_join_names(const sockpass_spawn_opts_t *o, char **out) {
  size_t i, len = 0;
  char *s;
  *out = NULL;
  if (o->names == NULL || o->nsocks == 0)
    return 0;
  for (i = 0; i < o->nsocks; i++) {
    if (!sp_name_ok(o->names[i]))
      return SOCKPASS_EINVAL;
    len += strlen(o->names[i]) + 1;
  }
  s = malloc(len);
  if (s == NULL)
    return SOCKPASS_ENOMEM;
  s[0] = '\0';
  len = 0;
  for (i = 0; i < o->nsocks; i++) {
    size_t n = strlen(o->names[i]);
    if (i > 0)
      s[len++] = ':';
    memcpy(s + len, o->names[i], n);
    len += n;
  }
  s[len] = '\0';
  *out = s;
  return 0;
}

int sockpass_spawn(const char *file, const char *const *argv, const sockpass_spawn_opts_t *opts,
                   sockpass_proc_t **proc) {
  sockpass_spawn_opts_t defaults;
  char *names;
  size_t i;
  int rc;
  if (proc == NULL)
    return SOCKPASS_EINVAL;
  *proc = NULL;
  if (file == NULL || file[0] == '\0' || argv == NULL || argv[0] == NULL)
    return SOCKPASS_EINVAL;
  if (opts == NULL) {
    sockpass_spawn_opts_init(&defaults);
    opts = &defaults;
  }
  if ((opts->flags & ~SOCKPASS_SPAWN_KILL_WITH_PARENT) != 0 ||
      (opts->nsocks > 0 && opts->socks == NULL))
    return SOCKPASS_EINVAL;
  if (opts->nsocks > SOCKPASS_MAX_SOCKS)
    return SOCKPASS_ETOOMANY;
  for (i = 0; i < opts->nsocks; i++)
    if (opts->socks[i] == SOCKPASS_INVALID_SOCK)
      return SOCKPASS_EBADF;
  rc = sp_join_names(opts, &names);
  if (rc < 0)
    return rc;
  rc = sp__spawn(file, argv, opts, names, proc);
  free(names);
  return rc;
}

long sockpass_proc_pid(const sockpass_proc_t *proc) {
  return proc == NULL ? -1 : sp__proc_pid(proc);
}

int sockpass_proc_wait(sockpass_proc_t *proc, int timeout_ms, int *exit_code) {
  if (proc == NULL || timeout_ms < SOCKPASS_WAIT_FOREVER)
    return SOCKPASS_EINVAL;
  return sp__proc_wait(proc, timeout_ms, exit_code);
}

int sockpass_proc_kill(sockpass_proc_t *proc) {
  if (proc == NULL)
    return SOCKPASS_EINVAL;
  return sp__proc_kill(proc);
}

void sockpass_proc_free(sockpass_proc_t *proc) {
  if (proc != NULL)
    sp__proc_free(proc);
}

/* ---- In the child ---- */

static sp_inherit_t sp_inherit;
static char **sp_inherit_names; /* one per socket, pointing into .names */
static volatile int sp_inherit_keep; /* sockpass_inherited_keep_env was called */
static volatile int sp_inherit_done; /* the variables have been read */

int sp__names_match(const char *names, size_t n) {
  size_t fields = 1;
  if (names == NULL || n == 0)
    return 1;
  for (; *names != '\0'; names++)
    fields += *names == ':';
  return fields == n;
}

static void sp_inherit_load(void) {
  size_t i;
  char *p;
  sp_inherit.chan = SOCKPASS_INVALID_HANDLE;
  sp_inherit.keep_env = sp_inherit_keep;
  sp__inherited_read(&sp_inherit);
  sp_inherit_done = 1;
  if (sp_inherit.nsocks == 0 || sp_inherit.names == NULL)
    return;
  sp_inherit_names = calloc(sp_inherit.nsocks, sizeof *sp_inherit_names);
  if (sp_inherit_names == NULL)
    return; /* every name reads "unknown" */
  /* Name i is the i-th ':'-separated field; missing or empty fields stay
   * NULL and read as "unknown". */
  p = sp_inherit.names;
  for (i = 0; i < sp_inherit.nsocks && p != NULL; i++) {
    char *end = strchr(p, ':');
    if (end != NULL)
      *end = '\0';
    if (*p != '\0')
      sp_inherit_names[i] = p;
    p = end != NULL ? end + 1 : NULL;
  }
}

int sockpass_inherited_keep_env(void) {
  if (sp_inherit_done)
    return SOCKPASS_EINVAL; /* too late: already read (and removed) */
  sp_inherit_keep = 1;
  return 0;
}

/* family 0: any; listening -1: either; port 0: any. */
static int sp_sock_is(sockpass_sock_t sock, int family, int type, int listening, int inet,
                      unsigned short port) {
  int f = 0, t = 0, l = 0, p = 0, rc;
  if (sock == SOCKPASS_INVALID_SOCK)
    return SOCKPASS_EBADF;
  if (type < 0 || listening < -1 || listening > 1 || family < 0)
    return SOCKPASS_EINVAL;
  if (inet && family != 0 && family != AF_INET && family != AF_INET6)
    return SOCKPASS_EINVAL;
  if ((rc = sp__sock_info(sock, &f, &t, &l, &p)) < 0)
    return rc;
  if (family != 0 && f != family)
    return 0;
  if (inet && f != AF_INET && f != AF_INET6)
    return 0;
  if (type != 0 && t != type)
    return 0;
  if (listening >= 0 && l != listening)
    return 0;
  if (inet && port != 0 && p != (int)port)
    return 0;
  return 1;
}

int sockpass_sock_is(sockpass_sock_t sock, int family, int type, int listening) {
  return sp_sock_is(sock, family, type, listening, 0, 0);
}

int sockpass_sock_is_inet(sockpass_sock_t sock, int family, int type, int listening,
                          unsigned short port) {
  return sp_sock_is(sock, family, type, listening, 1, port);
}

int sockpass_inherited(sockpass_sock_t *socks, size_t *nsocks) {
  size_t room;
  if (nsocks == NULL || (*nsocks > 0 && socks == NULL))
    return SOCKPASS_EINVAL;
  sp__once(sp_inherit_load);
  room = *nsocks;
  if (sp_inherit.err < 0) {
    *nsocks = 0;
    return sp_inherit.err;
  }
  *nsocks = sp_inherit.nsocks;
  if (room < sp_inherit.nsocks)
    return SOCKPASS_ETRUNC;
  if (sp_inherit.nsocks > 0)
    memcpy(socks, sp_inherit.socks, sp_inherit.nsocks * sizeof *socks);
  return 0;
}

const char *sockpass_inherited_name(size_t index) {
  sp__once(sp_inherit_load);
  if (index >= sp_inherit.nsocks)
    return NULL;
  if (sp_inherit_names == NULL || sp_inherit_names[index] == NULL)
    return "unknown";
  return sp_inherit_names[index];
}

int sockpass_inherited_chan(sockpass_chan_t **chan) {
  sockpass_handle_t h;
  if (chan == NULL)
    return SOCKPASS_EINVAL;
  *chan = NULL;
  sp__once(sp_inherit_load);
  h = sp__inherit_take_chan(&sp_inherit);
  if (h == SOCKPASS_INVALID_HANDLE)
    return SOCKPASS_ENOENT;
  return sp__open(h, chan);
}
