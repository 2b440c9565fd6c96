# Per-test options for tests/daemon (see tests/CMakeLists.txt).
set(VMF_TEST_OPTS_vmfd_units LIBS vmfd_lib TIMEOUT 60)
set(VMF_TEST_OPTS_vmfd_readable LIBS vmfd_lib TIMEOUT 60)
set(VMF_TEST_OPTS_vmfd_http_parse LIBS vmfd_lib TIMEOUT 60 SOURCES ${CMAKE_CURRENT_LIST_DIR}/http_parse_drive.c)
