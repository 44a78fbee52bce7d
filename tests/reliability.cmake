# Reliability tests: corruption (every flip and truncation, every built-in format), write
# faults and crash consistency.
ckpt_add_test(reliability.corruption reliability/test_corruption.cpp)
