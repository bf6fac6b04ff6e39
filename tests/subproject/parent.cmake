# SPDX-License-Identifier: MIT
# What both parent projects do once sockpass is part of them: the README's
# quickstart as the parent's app and its one test, and programs of the parent
# named like sockpass's own (their file names), which a sockpass target of
# the same name would stop at configure time.
add_executable(app ${SOCKPASS_SOURCE_DIR}/examples/quickstart/quickstart.c)
target_link_libraries(app PRIVATE sockpass::sockpass)
if(WIN32)
  target_link_libraries(app PRIVATE ws2_32)
endif()
add_test(NAME parent_app COMMAND app)
foreach(name handoff prefork inetd-echo inetd-echo-drive hot-restart quickstart
             test_api test_transfer test_spawn test_sockpass_run sockpass_run_child)
  add_executable(${name} ${CMAKE_CURRENT_LIST_DIR}/collide.c)
endforeach()
