# Distributed checkpoints (issue 18): <ckpt/dist.hpp>. The single-process tests (box arithmetic,
# tiling, planner, SingleProcess save/load, hostile metadata) always run; the MPI ones register
# only when find_package(MPI) finds it (Debian: libopenmpi-dev openmpi-bin), and say so; with
# CKPT_REQUIRE_INTEROP (CI=true) a missing MPI is a configure error.
ckpt_add_test(dist.unit dist/test_dist.cpp dist/test_dist_files.cpp dist/test_dist_manager.cpp)

# bench/dist_plan.cpp in smoke mode: it still works and the metadata it plans reads back whole.
add_executable(dist_plan_smoke ${PROJECT_SOURCE_DIR}/bench/dist_plan.cpp)
target_link_libraries(dist_plan_smoke PRIVATE ckpt::ckpt ckpt_project_flags)
ckpt_add_checked_test(NAME bench.dist_plan_smoke EXPECT "chunks round-trip: yes" COMMAND dist_plan_smoke --smoke)
set_tests_properties(bench.dist_plan_smoke PROPERTIES LABELS bench)

# ---- MPI: real processes under mpiexec (OpenMPI as root needs the two ALLOW variables; more
# ranks than cores need --oversubscribe). A handful of runs: one run of 4 ranks saves with
# N = 1..4 (the first N ranks), a separate run loads each with M = 1..4; a world of 3 saves and
# one of 2 loads; a world of 3 sees a rank fail.
# The C API through the C++ compiler (the project enables only CXX); MPI's deprecated C++
# bindings (libmpi_cxx, gone in OpenMPI 5) are not needed.
set(MPI_CXX_SKIP_MPICXX ON)
find_package(MPI COMPONENTS CXX QUIET)
ckpt_interop_report(mpi "${MPI_CXX_FOUND}" "MPI (Debian: libopenmpi-dev openmpi-bin)" "MPI ${MPI_CXX_VERSION}, ${MPIEXEC_EXECUTABLE}")
if(MPI_CXX_FOUND)
  add_executable(dist_mpi_tool dist/dist_mpi_tool.cpp)
  target_link_libraries(dist_mpi_tool PRIVATE ckpt::ckpt ckpt_project_flags MPI::MPI_CXX)
  target_include_directories(dist_mpi_tool PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/support)
  set(_dist_out ${CMAKE_CURRENT_BINARY_DIR}/dist-mpi)
  # Under ASan, LeakSanitizer reports what OpenMPI itself leaves allocated (MPI_Init/Finalize,
  # its progress thread): dist/lsan_openmpi.supp suppresses stacks inside OpenMPI's libraries
  # only. Inert in builds without sanitizers.
  set(_dist_mpi_env "OMPI_ALLOW_RUN_AS_ROOT=1;OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1"
      "LSAN_OPTIONS=suppressions=${CMAKE_CURRENT_SOURCE_DIR}/dist/lsan_openmpi.supp:fast_unwind_on_malloc=0")
  # ckpt_dist_mpi_test(<name> <ranks> <expect> <mode> <dir>)
  function(ckpt_dist_mpi_test name ranks expect mode dir)
    ckpt_add_checked_test(NAME dist.mpi.${name} EXPECT "${expect}"
             COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} ${ranks} --oversubscribe ${MPIEXEC_PREFLAGS}
                     $<TARGET_FILE:dist_mpi_tool> ${MPIEXEC_POSTFLAGS} ${mode} ${dir})
    set_tests_properties(dist.mpi.${name} PROPERTIES TIMEOUT 300 LABELS mpi
             ENVIRONMENT "${_dist_mpi_env}")
  endfunction()
  ckpt_dist_mpi_test(matrix_save 4 "dist matrix saved with N = 1\\.\\.4: ok" matrix-save ${_dist_out}/matrix)
  ckpt_dist_mpi_test(matrix_load 4 "dist matrix loaded 16 \\(N, M\\) pairs: ok" matrix-load ${_dist_out}/matrix)
  set_tests_properties(dist.mpi.matrix_save PROPERTIES FIXTURES_SETUP dist_matrix)
  set_tests_properties(dist.mpi.matrix_load PROPERTIES FIXTURES_REQUIRED dist_matrix)
  ckpt_dist_mpi_test(save_3 3 "dist saved on 3 ranks: ok" save ${_dist_out}/world)
  ckpt_dist_mpi_test(load_2 2 "dist loaded on 2 ranks: ok" load ${_dist_out}/world)
  set_tests_properties(dist.mpi.save_3 PROPERTIES FIXTURES_SETUP dist_world)
  set_tests_properties(dist.mpi.load_2 PROPERTIES FIXTURES_REQUIRED dist_world)
  ckpt_dist_mpi_test(fault 3 "dist faults on 3 ranks: ok" fault ${_dist_out}/fault)
  ckpt_dist_mpi_test(manager 3 "dist manager on 3 ranks: ok" manager ${_dist_out}/manager)

  # The README's example, compiled and run on 2 ranks.
  ckpt_readme_snippet(readme_dist cpp ${CMAKE_CURRENT_BINARY_DIR}/readme_dist.cpp)
  add_executable(readme_dist ${CMAKE_CURRENT_BINARY_DIR}/readme_dist.cpp)
  target_link_libraries(readme_dist PRIVATE ckpt::ckpt ckpt_project_flags MPI::MPI_CXX)
  file(MAKE_DIRECTORY ${_dist_out}/readme)
  ckpt_add_checked_test(NAME readme.dist_snippet EXPECT "resharded: epoch 3, global \\[8, 4\\], row 7 from rank 1"
           WORKING_DIRECTORY ${_dist_out}/readme
           COMMAND ${MPIEXEC_EXECUTABLE} ${MPIEXEC_NUMPROC_FLAG} 2 --oversubscribe ${MPIEXEC_PREFLAGS} $<TARGET_FILE:readme_dist> ${MPIEXEC_POSTFLAGS})
  set_tests_properties(readme.dist_snippet PROPERTIES TIMEOUT 300 LABELS mpi
           ENVIRONMENT "${_dist_mpi_env}")
endif()

# The distributed training example resumed across world sizes (examples/train_dist.cpp).
if(TARGET train_dist)
  ckpt_add_checked_test(NAME example.train_dist.resharded_resume
           EXPECT "train_dist resumed on 4 -> 2 -> 3 ranks: [0-9a-f]+ \\(identical"
           COMMAND ${CMAKE_COMMAND} -DMPIEXEC=${MPIEXEC_EXECUTABLE} -DNP=${MPIEXEC_NUMPROC_FLAG} -DTRAIN=$<TARGET_FILE:train_dist>
                   -DWORK=${CMAKE_CURRENT_BINARY_DIR}/train-dist -DEPOCHS=6 -P ${CMAKE_CURRENT_SOURCE_DIR}/dist/train_dist_resume.cmake)
  set_tests_properties(example.train_dist.resharded_resume PROPERTIES TIMEOUT 300 LABELS mpi ENVIRONMENT "${_dist_mpi_env}")
endif()

# Its checkpoint consolidated by `ckpt convert` loads in Python's torch with the global shapes.
if(TARGET train_dist AND CKPT_BUILD_TOOLS)
  ckpt_python_has(_have_torch_for_dist torch numpy)
  ckpt_interop_report(dist-torch "${_have_torch_for_dist}" "torch and numpy for ${CKPT_PYTHON} (Debian: python3-torch)")
  if(_have_torch_for_dist)
    ckpt_add_checked_test(NAME example.train_dist.convert_torch EXPECT "train_dist checkpoint consolidated: torch.load sees \\[64, 32\\]"
             COMMAND ${CMAKE_COMMAND} -DMPIEXEC=${MPIEXEC_EXECUTABLE} -DNP=${MPIEXEC_NUMPROC_FLAG} -DTRAIN=$<TARGET_FILE:train_dist>
                     -DTOOL=$<TARGET_FILE:ckpt_tool> -DPYTHON=${CKPT_PYTHON} -DWORK=${CMAKE_CURRENT_BINARY_DIR}/train-dist-convert
                     -P ${CMAKE_CURRENT_SOURCE_DIR}/dist/train_dist_convert.cmake)
    set_tests_properties(example.train_dist.convert_torch PROPERTIES TIMEOUT 300 LABELS "mpi;interop" ENVIRONMENT "${_dist_mpi_env}")
  endif()
endif()
