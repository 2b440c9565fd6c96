# Per-test options for tests/e2e (see tests/CMakeLists.txt). The e2e tests
# start real vmfd processes from build/bin; they share vmfd_e2e_util.c.
set(VMFD_E2E_UTIL ${CMAKE_CURRENT_LIST_DIR}/vmfd_e2e_util.c)
set(VMF_TEST_OPTS_vmfd_ingest TIMEOUT 300 LIBS sqlite3 vmf_httpc SOURCES ${VMFD_E2E_UTIL})
set(VMF_TEST_OPTS_vmfd_systemd TIMEOUT 180 LIBS sqlite3 vmf_httpc SOURCES ${VMFD_E2E_UTIL})
set(VMF_TEST_OPTS_vmfd_badinput TIMEOUT 180 LIBS sqlite3 vmf_httpc SOURCES ${VMFD_E2E_UTIL})
set(VMF_TEST_OPTS_vmfd_crash TIMEOUT 300 LABELS slow LIBS sqlite3 vmf_httpc SOURCES ${VMFD_E2E_UTIL})
set(VMF_TEST_OPTS_vmfd_lifecycle TIMEOUT 300 LIBS sqlite3 vmf_httpc SOURCES ${VMFD_E2E_UTIL})
set(VMF_TEST_OPTS_vmfd_clustering TIMEOUT 120 LIBS sqlite3 vmf_httpc SOURCES ${VMFD_E2E_UTIL})
set(VMF_TEST_OPTS_vmfd_predict_load TIMEOUT 180 LIBS sqlite3 vmf_httpc pthread SOURCES ${VMFD_E2E_UTIL})
set(VMF_TEST_OPTS_vmfd_robust TIMEOUT 180 LIBS sqlite3 vmf_httpc SOURCES ${VMFD_E2E_UTIL})
set(VMF_TEST_OPTS_vmfd_hostile TIMEOUT 300 LIBS sqlite3 vmf_httpc SOURCES ${VMFD_E2E_UTIL})
# The power-loss simulation: an LD_PRELOAD library next to the binaries
# (build/bin/libvmfd_powerloss.so), used by test_vmfd_powerloss.
add_library(vmfd_powerloss SHARED ${CMAKE_CURRENT_LIST_DIR}/powerloss_shim.c)
target_link_libraries(vmfd_powerloss PRIVATE dl pthread)
set_target_properties(vmfd_powerloss PROPERTIES LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/bin)
set(VMF_TEST_OPTS_vmfd_powerloss TIMEOUT 900 LABELS slow LIBS sqlite3 vmf_httpc SOURCES ${VMFD_E2E_UTIL})
# The newcomer's check: install into a temporary prefix and use it from there.
add_test(NAME e2e.install COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/install_check.sh
         ${CMAKE_BINARY_DIR} ${PROJECT_SOURCE_DIR} "${VMF_SANITIZE}")
set_tests_properties(e2e.install PROPERTIES LABELS "e2e" TIMEOUT 300)
# Every option of each program's --help (and every vmfd.conf key) is in its man page.
add_test(NAME e2e.manpages COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/manpages_check.sh
         ${CMAKE_BINARY_DIR}/bin ${PROJECT_SOURCE_DIR})
set_tests_properties(e2e.manpages PROPERTIES LABELS "e2e" TIMEOUT 60)
set(VMF_TEST_OPTS_vmfd_inspect TIMEOUT 240 LIBS sqlite3 vmf_httpc SOURCES ${VMFD_E2E_UTIL})
