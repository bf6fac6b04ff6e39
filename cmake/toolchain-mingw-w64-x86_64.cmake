# SPDX-License-Identifier: MIT
# Cross build for 64-bit Windows with Debian's gcc-mingw-w64-x86-64; tests run
# under Wine through CMAKE_CROSSCOMPILING_EMULATOR.
set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)
set(SOCKPASS_MINGW_PREFIX x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${SOCKPASS_MINGW_PREFIX}-gcc)
set(CMAKE_RC_COMPILER ${SOCKPASS_MINGW_PREFIX}-windres)
# Append, do not overwrite: a plain set() here would shadow a
# -DCMAKE_FIND_ROOT_PATH=<dir> given on the command line, and with the ONLY
# modes below (which re-root CMAKE_PREFIX_PATH too) there would be no way left
# to find target libraries installed outside the mingw sysroot, such as the
# static CMocka that scripts/lib/deps.sh (sp_cmocka_mingw) builds.
list(APPEND CMAKE_FIND_ROOT_PATH /usr/${SOCKPASS_MINGW_PREFIX})
list(REMOVE_DUPLICATES CMAKE_FIND_ROOT_PATH)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
if(NOT DEFINED CMAKE_CROSSCOMPILING_EMULATOR)
  find_program(SOCKPASS_WINE NAMES wine)
  if(SOCKPASS_WINE)
    set(CMAKE_CROSSCOMPILING_EMULATOR ${SOCKPASS_WINE})
  endif()
endif()
