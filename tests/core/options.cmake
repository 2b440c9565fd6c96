# Per-test options for tests/core (see tests/CMakeLists.txt). Append one line per test.
