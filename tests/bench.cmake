# The benchmark's smoke mode (32 MiB, one run) runs in the suite only to prove it still works;
# its timings are printed, never asserted. The full benchmark: `cmake --workflow --preset bench`.
add_executable(bench_io_smoke ${PROJECT_SOURCE_DIR}/bench/bench_io.cpp)
target_link_libraries(bench_io_smoke PRIVATE ckpt::ckpt ckpt_project_flags)
ckpt_add_checked_test(NAME bench.smoke EXPECT "wrote .*bench-smoke.json" COMMAND bench_io_smoke --smoke --dir ${CMAKE_CURRENT_BINARY_DIR}/bench-smoke
                                  --json ${CMAKE_CURRENT_BINARY_DIR}/bench-smoke.json)
set_tests_properties(bench.smoke PROPERTIES LABELS bench)
ckpt_python_has(_have_torch_np numpy torch)
ckpt_interop_report(bench-torch "${_have_torch_np}" "numpy and torch for ${CKPT_PYTHON}")
if(_have_torch_np)
  ckpt_add_checked_test(NAME bench.smoke_torch EXPECT "wrote .*bench-smoke-torch.json"
           COMMAND ${CKPT_PYTHON} ${PROJECT_SOURCE_DIR}/bench/compare_torch.py --smoke
                   --cpp-json ${CMAKE_CURRENT_BINARY_DIR}/bench-smoke.json --json ${CMAKE_CURRENT_BINARY_DIR}/bench-smoke-torch.json)
  set_tests_properties(bench.smoke_torch PROPERTIES DEPENDS bench.smoke LABELS "bench;interop")
endif()
ckpt_add_checked_test(NAME bench.keeps_user_dir EXPECT "bench dir: user files kept"
  COMMAND ${CMAKE_COMMAND} -DBENCH=$<TARGET_FILE:bench_io_smoke> -DDIR=${CMAKE_CURRENT_BINARY_DIR}/bench-user-dir
          -P ${CMAKE_CURRENT_SOURCE_DIR}/bench/keeps_user_dir.cmake)
set_tests_properties(bench.keeps_user_dir PROPERTIES LABELS bench)
