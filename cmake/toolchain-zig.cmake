# SPDX-License-Identifier: MIT
# Cross build with `zig cc` (zig 0.11.0, which carries the macOS SDK headers
# and musl; scripts/lib/deps.sh sp_zig installs it):
#   cmake -S . -B build-macos -DCMAKE_TOOLCHAIN_FILE=cmake/toolchain-zig.cmake \
#     -DSOCKPASS_ZIG=/path/to/zig -DSOCKPASS_ZIG_TARGET=aarch64-macos
# SOCKPASS_ZIG_TARGET is a zig target: aarch64-macos and x86_64-macos (compile
# and link only: nothing here runs macOS programs), x86_64-linux-musl (static
# programs that run on any x86_64 Linux).
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES SOCKPASS_ZIG SOCKPASS_ZIG_TARGET)
if(NOT SOCKPASS_ZIG OR NOT SOCKPASS_ZIG_TARGET)
  message(FATAL_ERROR "toolchain-zig.cmake: set SOCKPASS_ZIG (the zig program) and SOCKPASS_ZIG_TARGET")
endif()
if(SOCKPASS_ZIG_TARGET MATCHES "-macos")
  set(CMAKE_SYSTEM_NAME Darwin)
elseif(SOCKPASS_ZIG_TARGET MATCHES "-linux")
  set(CMAKE_SYSTEM_NAME Linux)
else()
  message(FATAL_ERROR "toolchain-zig.cmake: no CMake system name known for ${SOCKPASS_ZIG_TARGET}")
endif()
string(REGEX MATCH "^[^-]+" CMAKE_SYSTEM_PROCESSOR "${SOCKPASS_ZIG_TARGET}")

# CMake wants one program per tool: small wrappers next to zig, one set per
# target (written again, identically, on every configure).
get_filename_component(_sp_zig_dir "${SOCKPASS_ZIG}" DIRECTORY)
set(_sp_wrap "${_sp_zig_dir}/sockpass-wrappers/${SOCKPASS_ZIG_TARGET}")
foreach(_sp_tool cc ar ranlib)
  if(_sp_tool STREQUAL cc)
    set(_sp_cmd "cc -target ${SOCKPASS_ZIG_TARGET}")
  else()
    set(_sp_cmd "${_sp_tool}")
  endif()
  # zig refuses -Wl,-v, which CMake passes when it probes the compiler's ABI.
  set(_sp_text "#!/bin/sh\nfor a in \"$@\"; do shift; [ \"$a\" = -Wl,-v ] || set -- \"$@\" \"$a\"; done\nexec \"${SOCKPASS_ZIG}\" ${_sp_cmd} \"$@\"\n")
  if(EXISTS "${_sp_wrap}/${_sp_tool}")
    file(READ "${_sp_wrap}/${_sp_tool}" _sp_old)
  else()
    set(_sp_old "")
  endif()
  if(NOT _sp_old STREQUAL _sp_text)
    file(WRITE "${_sp_wrap}/${_sp_tool}.tmp" "${_sp_text}")
    execute_process(COMMAND chmod 755 "${_sp_wrap}/${_sp_tool}.tmp")
    file(RENAME "${_sp_wrap}/${_sp_tool}.tmp" "${_sp_wrap}/${_sp_tool}")
  endif()
endforeach()
set(CMAKE_C_COMPILER "${_sp_wrap}/cc")
set(CMAKE_AR "${_sp_wrap}/ar" CACHE FILEPATH "zig ar")
set(CMAKE_RANLIB "${_sp_wrap}/ranlib" CACHE FILEPATH "zig ranlib")

# Only the target's own libraries and headers (zig brings libc), never the
# build machine's; programs (python3, wine ...) come from the build machine.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)
if(SOCKPASS_ZIG_TARGET MATCHES "-musl")
  # Static programs; they run here, so no emulator is needed.
  set(CMAKE_EXE_LINKER_FLAGS_INIT "-static")
endif()
