/* SPDX-License-Identifier: MIT */
/* The error table: sockpass_strerror, sockpass_err_name, sockpass_syserr. */
#include "platform.h"

#if defined(_MSC_VER)
#define SP_THREAD_LOCAL __declspec(thread)
#else
#define SP_THREAD_LOCAL _Thread_local
#endif

int sockpass_syserr(int err) {
  /* SYSERR codes lie below the base; the OS code is the distance to it. */
  if (err < SOCKPASS_SYSERR_BASE)
    return SOCKPASS_SYSERR_BASE - err;
  return 0;
}

const char *sockpass_err_name(int err) {
  switch ((sockpass_errno_t)err) {
#define SP_NAME_CASE(name, value, text)                                        \
  case SOCKPASS_##name:                                                        \
    return #name;
    SOCKPASS_ERRNO_MAP(SP_NAME_CASE)
#undef SP_NAME_CASE
  case SOCKPASS_SYSERR_BASE:
    break;
  }
  if (err == 0)
    return "OK";
  if (sockpass_syserr(err) != 0)
    return "SYSERR";
  return "UNKNOWN";
}

const char *sockpass_strerror(int err) {
  static SP_THREAD_LOCAL char sysbuf[256];
  switch ((sockpass_errno_t)err) {
#define SP_TEXT_CASE(name, value, text)                                        \
  case SOCKPASS_##name:                                                        \
    return text;
    SOCKPASS_ERRNO_MAP(SP_TEXT_CASE)
#undef SP_TEXT_CASE
  case SOCKPASS_SYSERR_BASE:
    break;
  }
  if (err == 0)
    return "success";
  if (sockpass_syserr(err) != 0) {
    sp__sys_strerror(sockpass_syserr(err), sysbuf, sizeof sysbuf);
    return sysbuf;
  }
  return "unknown error";
}
