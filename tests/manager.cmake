# Checkpoint and CheckpointManager (issue 4): object graph, restore status, retention, commit
# protocol, verified restore with fallback, async staging, directory lock.
ckpt_add_test(unit.checkpoint unit/test_checkpoint.cpp)
ckpt_add_test(unit.manager unit/test_manager.cpp unit/test_manager_restore.cpp unit/test_manager_async.cpp
              unit/test_manager_crash.cpp unit/test_manager_digest.cpp)
# The directory backend the manager is tested with is examples/rawdir.hpp.
target_include_directories(unit.manager PRIVATE ${PROJECT_SOURCE_DIR}/examples)

# The README's CheckpointManager snippet is compiled and run (its own end marker keeps the
# quick-start snippet's greedy match in tests/CMakeLists.txt from reaching it).
file(READ ${PROJECT_SOURCE_DIR}/README.md _ckpt_mgr_readme)
string(REGEX MATCH "<!-- snippet: manager_snippet -->[\r\n]+```cpp[\r\n]+(.*)```[\r\n]+<!-- end manager_snippet -->" _ckpt_mgr_m "${_ckpt_mgr_readme}")
if(NOT CMAKE_MATCH_1)
  message(FATAL_ERROR "README.md lost its marked snippet (<!-- snippet: manager_snippet -->)")
endif()
file(GENERATE OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/manager_snippet.cpp CONTENT "${CMAKE_MATCH_1}")
add_executable(manager_snippet ${CMAKE_CURRENT_BINARY_DIR}/manager_snippet.cpp)
target_link_libraries(manager_snippet PRIVATE ckpt::ckpt ckpt_project_flags)
set(_ckpt_mgr_dir ${CMAKE_CURRENT_BINARY_DIR}/manager-snippet)
add_test(NAME readme.manager_snippet_clean COMMAND ${CMAKE_COMMAND} -E rm -rf ${_ckpt_mgr_dir}/runs)
set_tests_properties(readme.manager_snippet_clean PROPERTIES FIXTURES_SETUP ckpt_manager_snippet)
file(MAKE_DIRECTORY ${_ckpt_mgr_dir})
ckpt_add_checked_test(NAME readme.manager_snippet EXPECT "kept steps 2 5 6" COMMAND manager_snippet WORKING_DIRECTORY ${_ckpt_mgr_dir})
set_tests_properties(readme.manager_snippet PROPERTIES FIXTURES_REQUIRED ckpt_manager_snippet)

# bench/manager_async.cpp in smoke mode (8 MiB, one run): proves it still works and that async
# and sync wrote the same bytes; its timings are printed, never asserted.
add_executable(manager_async_smoke ${PROJECT_SOURCE_DIR}/bench/manager_async.cpp)
target_link_libraries(manager_async_smoke PRIVATE ckpt::ckpt ckpt_project_flags)
ckpt_add_checked_test(NAME bench.manager_async_smoke EXPECT "async bytes equal sync bytes: yes" COMMAND manager_async_smoke --smoke --dir ${CMAKE_CURRENT_BINARY_DIR}/bench-manager-smoke)
set_tests_properties(bench.manager_async_smoke PROPERTIES LABELS bench)

# bench/manager_digest.cpp in smoke mode (8 MiB, one run): it still works and the digests taken
# while writing equal the CRC-32 of a second read; its timings are printed, never asserted.
add_executable(manager_digest_smoke ${PROJECT_SOURCE_DIR}/bench/manager_digest.cpp)
target_link_libraries(manager_digest_smoke PRIVATE ckpt::ckpt ckpt_project_flags)
ckpt_add_checked_test(NAME bench.manager_digest_smoke EXPECT "digests equal the CRC-32 of a second read: yes" COMMAND manager_digest_smoke --smoke --dir ${CMAKE_CURRENT_BINARY_DIR}/bench-digest-smoke)
set_tests_properties(bench.manager_digest_smoke PROPERTIES LABELS bench)
