# The libtorch integration (include/ckpt/integrations/torch.hpp, issue 17): needs libtorch
# (find_package(Torch), cmake/ckpt_torch.cmake) and, for the Python side, torch for
# ${CKPT_PYTHON}. Three libtorch translation units in all (each is slow to compile): this test
# program, the tool the Python script drives, and examples/libtorch_train.cpp.
ckpt_python_has(_have_py_torch torch numpy)
if(CKPT_HAVE_TORCH AND _have_py_torch)
  set(_torch_integration ON)
else()
  set(_torch_integration OFF)
endif()
ckpt_interop_report(libtorch "${_torch_integration}"
  "libtorch (find_package(Torch); Debian: libtorch-dev) and torch + numpy for ${CKPT_PYTHON} (Debian: python3-torch)")
if(_torch_integration)
  ckpt_add_test(integrations.torch integrations/test_torch.cpp)
  target_link_libraries(integrations.torch PRIVATE torch)

  add_executable(torch_integration_tool interop/torch_integration_tool.cpp)
  target_link_libraries(torch_integration_tool PRIVATE ckpt::ckpt ckpt_project_flags torch)
  ckpt_add_checked_test(NAME interop.torch.integration EXPECT "torch integration ok"
           COMMAND ${CMAKE_COMMAND} -E env PYTHONDONTWRITEBYTECODE=1
                   ${CKPT_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/interop/torch_integration.py
                   $<TARGET_FILE:torch_integration_tool> ${CMAKE_CURRENT_BINARY_DIR}/torch-integration)
  set_tests_properties(interop.torch.integration PROPERTIES LABELS interop)

  # CUDA tensors (tests/integrations/test_torch_cuda.cpp) need a libtorch with CUDA and a GPU:
  # registered only on request, so that no machine without one counts them as skipped-and-passed.
  # bench/cuda_device.sh builds and runs them on a GPU machine without CMake.
  option(CKPT_TEST_CUDA "Build and run the libtorch integration's CUDA tests (needs a GPU)" OFF)
  if(CKPT_TEST_CUDA)
    ckpt_add_test(integrations.torch_cuda integrations/test_torch_cuda.cpp)
    target_link_libraries(integrations.torch_cuda PRIVATE torch)
    message(STATUS "ckpt: CUDA tests of the libtorch integration enabled (CKPT_TEST_CUDA)")
  else()
    message(STATUS "ckpt: CUDA tests of the libtorch integration NOT registered (-DCKPT_TEST_CUDA=ON on a GPU machine; bench/cuda_device.sh)")
  endif()
endif()

# The example (built whenever libtorch is found): interrupted and resumed runs end in the same
# state as an uninterrupted one, and write the same final checkpoint bytes.
if(TARGET libtorch_train)
  foreach(fmt pt)  # the native format is resumed by integrations.torch; each run starts libtorch (~1 s)
    ckpt_add_checked_test(NAME example.libtorch_train.resume_exact.${fmt} EXPECT "resume exact: ${fmt} [0-9a-f]+"
             COMMAND ${CMAKE_COMMAND} -DTRAIN=$<TARGET_FILE:libtorch_train> -DWORK=${CMAKE_CURRENT_BINARY_DIR}/libtorch-resume-${fmt}
                     -DFORMAT=${fmt} -DEPOCHS=4 -DEPOCH_STOPS_ONLY=ON -P ${CMAKE_CURRENT_SOURCE_DIR}/train/resume_exact.cmake)
  endforeach()
endif()
