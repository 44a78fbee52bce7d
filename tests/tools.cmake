# Tests of the `ckpt` command-line tool (issue 9): each command on checkpoints the tests write
# with the library, JSON output parsed, exit codes and one-line errors checked. The tool is
# built in tools/ (added after tests/), so these register only when CKPT_BUILD_TOOLS is on.
if(CKPT_BUILD_TOOLS AND EXISTS ${PROJECT_SOURCE_DIR}/tools/CMakeLists.txt)
  ckpt_add_test(tools.cli tools/test_cli_inspect.cpp tools/test_cli_compare.cpp tools/test_cli_objects.cpp tools/test_cli_dist.cpp)
  target_include_directories(tools.cli PRIVATE ${PROJECT_SOURCE_DIR}/examples)  # rawdir.hpp: a backend the tool lacks
  target_compile_definitions(tools.cli PRIVATE CKPT_TOOL="$<TARGET_FILE:ckpt_tool>")
  add_dependencies(tools.cli ckpt_tool)

  # Checkpoints written by other programs (PyTorch, safetensors, transformers), when the shared
  # fixtures folder sits beside the clone.
  get_filename_component(_ckpt_shared_fixtures ${PROJECT_SOURCE_DIR}/../shared/fixtures ABSOLUTE)
  if(EXISTS ${_ckpt_shared_fixtures}/README.md)
    ckpt_add_test(tools.shared_fixtures tools/test_shared_fixtures.cpp)
    target_compile_definitions(tools.shared_fixtures PRIVATE CKPT_TOOL="$<TARGET_FILE:ckpt_tool>"
                               CKPT_SHARED_FIXTURES="${_ckpt_shared_fixtures}")
    add_dependencies(tools.shared_fixtures ckpt_tool)
    message(STATUS "ckpt: tool tests on shared fixtures enabled (${_ckpt_shared_fixtures})")
  else()
    message(STATUS "ckpt: tool tests on shared fixtures NOT registered: ${_ckpt_shared_fixtures} not found")
  endif()
endif()
