# Per-test options for tests/config (see tests/CMakeLists.txt).
set(VMF_TEST_OPTS_vmfd_config LIBS vmfd_config TIMEOUT 60)
