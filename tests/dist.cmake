# Distributed checkpoints (issue 18): <ckpt/dist.hpp>. The single-process tests (box arithmetic,
# tiling, planner, SingleProcess save/load, hostile metadata) always run; the MPI ones register
# only when find_package(MPI) finds it (Debian: libopenmpi-dev openmpi-bin), and say so; with
# CKPT_REQUIRE_INTEROP (CI=true) a missing MPI is a configure error.
ckpt_add_test(dist.unit dist/test_dist.cpp dist/test_dist_files.cpp)
