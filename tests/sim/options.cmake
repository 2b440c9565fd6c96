# Per-test options for tests/sim (see tests/CMakeLists.txt). Append one line per test.
set(VMF_TEST_OPTS_vmfsim_stream LIBS vmfsim_lib vmfmm_core_static TIMEOUT 60)
set(VMF_TEST_OPTS_vmfsim_summary LIBS vmfsim_lib vmfmm_core_static TIMEOUT 60)
set(VMF_TEST_OPTS_vmfsim_models LIBS vmfsim_lib vmfmm_core_static TIMEOUT 120)
set(VMF_TEST_OPTS_vmfsim_cli LIBS vmfsim_lib vmfmm_core_static TIMEOUT 300)
set(VMF_TEST_OPTS_vmfmm_cli SOURCES ${CMAKE_CURRENT_LIST_DIR}/vmfmm_testrun.c TIMEOUT 120)
set(VMF_TEST_OPTS_vmfmm_fit SOURCES ${CMAKE_CURRENT_LIST_DIR}/vmfmm_testrun.c TIMEOUT 300)
set(VMF_TEST_OPTS_plot LIBS vmf_simcommon TIMEOUT 60)
set(VMF_TEST_OPTS_cli_helpers LIBS vmf_simcommon TIMEOUT 60)
