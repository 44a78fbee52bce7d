# Reliability tests: corruption (every flip and truncation, every built-in format), write
# faults (write(2) and the sync steps: fsync, close, rename, directory swap), crash consistency,
# and resource limits (hostile sizes, decompression bombs, JSON footers and headers).
ckpt_add_test(reliability.corruption reliability/test_corruption.cpp)
ckpt_add_test(reliability.write_faults reliability/test_write_faults.cpp)
ckpt_add_test(reliability.resource_limits reliability/test_resource_limits.cpp)
ckpt_add_test(reliability.sync_faults reliability/test_sync_faults.cpp)
ckpt_add_test(reliability.json_limits reliability/test_json_limits.cpp)
