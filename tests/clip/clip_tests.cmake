# CLIP tests (label clip). make_tiny_clip.py builds a tiny random checkpoint
# and its references into the build tree at test time (fixture clip_model);
# nothing large is committed. Needs Debian's python3-torch, -numpy, -pil and
# -regex; without them the tests are not registered (a configure message says so).
if(TARGET vmfmm_clip)
    find_program(VMF_CLIP_PYTHON python3 PATHS /usr/bin NO_DEFAULT_PATH)
    if(NOT VMF_CLIP_PYTHON)
        find_program(VMF_CLIP_PYTHON python3)
    endif()
    set(_clip_ok 1)
    if(VMF_CLIP_PYTHON)
        execute_process(COMMAND ${VMF_CLIP_PYTHON} -c "import torch, numpy, PIL, regex"
            RESULT_VARIABLE _clip_ok OUTPUT_QUIET ERROR_QUIET)
    endif()
    if(_clip_ok EQUAL 0)
        set(_fx ${CMAKE_BINARY_DIR}/clip_fixture)
        add_test(NAME clip.fixture
            COMMAND ${VMF_CLIP_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/make_tiny_clip.py ${_fx})
        set_tests_properties(clip.fixture PROPERTIES FIXTURES_SETUP clip_model LABELS clip
            TIMEOUT 120)
        # For tests registered elsewhere (python/): where the fixture lives.
        set_property(GLOBAL PROPERTY VMF_CLIP_FIXTURE_DIR ${_fx})
        vmf_add_test(clip clip LIBS vmfmm_clip_static TIMEOUT 120)
        set_tests_properties(clip.clip PROPERTIES FIXTURES_REQUIRED clip_model
            ENVIRONMENT "OPENBLAS_NUM_THREADS=1;VMF_CLIP_FIXTURE=${_fx}")
        add_test(NAME clip.cli COMMAND ${VMF_CLIP_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/test_clip_cli.py
            ${CMAKE_BINARY_DIR}/bin/vmfmm ${_fx})
        set_tests_properties(clip.cli PROPERTIES FIXTURES_REQUIRED clip_model LABELS clip
            TIMEOUT 180 ENVIRONMENT "OPENBLAS_NUM_THREADS=1")
    else()
        message(STATUS "CLIP tests skipped: python3 with torch, numpy, PIL and regex not found")
    endif()
endif()
