# Per-test options for tests/core (see tests/CMakeLists.txt). Append one line per test.
set(VMF_TEST_OPTS_suffstats TIMEOUT 60)
set(VMF_TEST_OPTS_em_recovery TIMEOUT 600 LABELS slow)
set(VMF_TEST_OPTS_fileio TIMEOUT 30)
set(VMF_TEST_OPTS_null_opts TIMEOUT 60)
set(VMF_TEST_OPTS_topk TIMEOUT 30)
