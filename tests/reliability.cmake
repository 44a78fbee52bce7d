# Reliability tests: corruption (every flip and truncation, every built-in format), write
# faults (write(2) and the sync steps: fsync, close, rename, directory swap), crash consistency,
# and resource limits (hostile sizes, decompression bombs, JSON footers and headers).
ckpt_add_test(reliability.corruption reliability/test_corruption.cpp)
ckpt_add_test(reliability.write_faults reliability/test_write_faults.cpp)
ckpt_add_test(reliability.resource_limits reliability/test_resource_limits.cpp)
ckpt_add_test(reliability.sync_faults reliability/test_sync_faults.cpp)
ckpt_add_test(reliability.json_limits reliability/test_json_limits.cpp)
# Every input a fuzzer crashed on (tests/fuzz/regressions) and every fuzzer seed, replayed through
# the fuzzers' targets and built as they are (checksum mismatches ignored): in the default run,
# whether or not the fuzzers are built.
ckpt_add_test(reliability.fuzz_regressions reliability/test_fuzz_regressions.cpp)
target_include_directories(reliability.fuzz_regressions PRIVATE ${PROJECT_SOURCE_DIR}/tests/fuzz)
target_compile_definitions(reliability.fuzz_regressions PRIVATE FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION=1
                           CKPT_FUZZ_DIR="${PROJECT_SOURCE_DIR}/tests/fuzz")
