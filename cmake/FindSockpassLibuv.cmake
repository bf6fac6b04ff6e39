# SPDX-License-Identifier: MIT
# Finds libuv for sockpass_uv and defines the imported target
# sockpass_libuv::libuv. Tries, in order: libuv's own CMake package
# (libuv::uv_a / libuv::uv), pkg-config (libuv), then a plain search for uv.h
# and libuv / libuv_a. SockpassLibuv_STATIC=ON prefers the static library.
# Installed with sockpass, so that sockpassConfig.cmake finds the same way.
if(TARGET sockpass_libuv::libuv)
  set(SockpassLibuv_FOUND TRUE)
  return()
endif()

set(_spuv_deps "")
find_package(libuv CONFIG QUIET)
if(libuv_FOUND AND (TARGET libuv::uv_a OR TARGET libuv::uv))
  if(TARGET libuv::uv_a AND (SockpassLibuv_STATIC OR NOT TARGET libuv::uv))
    set(_spuv_target libuv::uv_a)
  else()
    set(_spuv_target libuv::uv)
  endif()
  add_library(sockpass_libuv::libuv INTERFACE IMPORTED)
  set_target_properties(sockpass_libuv::libuv PROPERTIES INTERFACE_LINK_LIBRARIES ${_spuv_target})
  set(SockpassLibuv_FOUND TRUE)
  return()
endif()

find_path(_spuv_inc uv.h)
if(SockpassLibuv_STATIC OR WIN32)
  find_library(_spuv_lib NAMES uv_a libuv_a uv libuv)
else()
  find_library(_spuv_lib NAMES uv libuv uv_a libuv_a)
endif()
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(SockpassLibuv REQUIRED_VARS _spuv_lib _spuv_inc)
if(SockpassLibuv_FOUND)
  if(WIN32)
    set(_spuv_deps psapi user32 advapi32 iphlpapi userenv ws2_32 dbghelp ole32 shell32)
  elseif(_spuv_lib MATCHES "\\.a$")
    find_package(Threads REQUIRED)
    set(_spuv_deps Threads::Threads ${CMAKE_DL_LIBS})
    if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
      list(APPEND _spuv_deps rt)
    endif()
  endif()
  add_library(sockpass_libuv::libuv UNKNOWN IMPORTED)
  set_target_properties(sockpass_libuv::libuv PROPERTIES
    IMPORTED_LOCATION "${_spuv_lib}"
    INTERFACE_INCLUDE_DIRECTORIES "${_spuv_inc}"
    INTERFACE_LINK_LIBRARIES "${_spuv_deps}")
endif()
mark_as_advanced(_spuv_inc _spuv_lib)
