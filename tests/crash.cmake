# Crash consistency: kill -9 during saves through CheckpointManager, then check that a fresh
# manager recovers a checkpoint that verifies and holds a state the program saved.
# 200 trials (sync and async) in the default suite; 1000 under the `long` label.
add_executable(crash_saver crash/crash_saver.cpp)
target_link_libraries(crash_saver PRIVATE ckpt::ckpt ckpt_project_flags)
add_executable(crash_driver crash/crash_driver.cpp)
target_link_libraries(crash_driver PRIVATE ckpt::ckpt ckpt_project_flags)
foreach(mode sync async)
  set(_flag "")
  if(mode STREQUAL "async")
    set(_flag --async)
  endif()
  ckpt_add_checked_test(NAME crash.kill9.${mode} EXPECT "failures: 0"
           COMMAND crash_driver $<TARGET_FILE:crash_saver> ${CMAKE_CURRENT_BINARY_DIR}/crash-${mode} 100 7 ${_flag})
  set_tests_properties(crash.kill9.${mode} PROPERTIES LABELS crash TIMEOUT 900)
  ckpt_add_checked_test(NAME crash.kill9_long.${mode} EXPECT "failures: 0"
           COMMAND crash_driver $<TARGET_FILE:crash_saver> ${CMAKE_CURRENT_BINARY_DIR}/crash-long-${mode} 1000 11 ${_flag})
  set_tests_properties(crash.kill9_long.${mode} PROPERTIES LABELS "crash;long" TIMEOUT 3600)
endforeach()
