# PyTorch .pt interop (issue 6): the restricted unpickler and pickler, the .pt backend, the
# torch 2.x / legacy fixtures from ../shared/fixtures, and real-torch interop tests.
ckpt_add_test(formats.pickle formats/test_pickle.cpp)
if(EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/formats/test_torch.cpp)
  ckpt_add_test(formats.torch formats/test_torch.cpp)
endif()
# Interop III (issue 16): NumPy values, sets/bytes/complex, inert Python objects — hand-built files
ckpt_add_test(formats.torch_objects formats/test_torch_objects.cpp)

# ---- real torch 2.x and legacy files (../shared/fixtures, beside the clone in CI) ----
set(CKPT_FIXTURES_DIR ${PROJECT_SOURCE_DIR}/../shared/fixtures)
if(EXISTS ${CKPT_FIXTURES_DIR}/torch2 AND EXISTS ${CKPT_FIXTURES_DIR}/torch-legacy)
  ckpt_add_test(formats.torch_fixtures formats/test_torch_fixtures.cpp)
  target_compile_definitions(formats.torch_fixtures PRIVATE CKPT_FIXTURES_DIR="${CKPT_FIXTURES_DIR}")
  message(STATUS "ckpt: torch fixture tests enabled (${CKPT_FIXTURES_DIR})")
else()
  message(STATUS "ckpt: torch fixture tests NOT registered: ${CKPT_FIXTURES_DIR}/torch2 not found")
endif()

# ---- real PyTorch (Debian's python3-torch) reads what ckpt writes and the other way round ----
ckpt_python_has(_have_torch torch numpy)
ckpt_interop_report(torch "${_have_torch}" "torch and numpy for ${CKPT_PYTHON} (Debian: python3-torch python3-numpy)")
if(_have_torch)
  add_executable(torch_interop_tool interop/torch_tool.cpp)
  target_link_libraries(torch_interop_tool PRIVATE ckpt::ckpt ckpt_project_flags)
  target_include_directories(torch_interop_tool PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/support)
  foreach(part read resave write reject)
    ckpt_add_checked_test(NAME interop.torch.${part} EXPECT "torch interop ok \\(${part}"
             COMMAND ${CMAKE_COMMAND} -E env PYTHONDONTWRITEBYTECODE=1
                     ${CKPT_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/interop/torch_interop.py
                     $<TARGET_FILE:torch_interop_tool> ${CMAKE_CURRENT_BINARY_DIR}/torch-interop ${part})
    set_tests_properties(interop.torch.${part} PROPERTIES LABELS interop)
  endforeach()
endif()

# ---- cross-framework resume: train_linear (C++) -> torch.nn.Linear + torch.optim.Adam -> C++ ----
if(_have_torch AND TARGET train_linear)
  add_executable(torch_cross_tool interop/torch_cross_tool.cpp)
  target_link_libraries(torch_cross_tool PRIVATE ckpt::ckpt ckpt_project_flags)
  target_include_directories(torch_cross_tool PRIVATE ${PROJECT_SOURCE_DIR}/examples)
  ckpt_add_checked_test(NAME interop.torch.cross_resume EXPECT "torch cross resume ok"
           COMMAND ${CMAKE_COMMAND} -E env PYTHONDONTWRITEBYTECODE=1
                   ${CKPT_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/interop/torch_cross_resume.py
                   $<TARGET_FILE:train_linear> $<TARGET_FILE:torch_cross_tool> ${CMAKE_CURRENT_BINARY_DIR}/torch-cross-resume)
  set_tests_properties(interop.torch.cross_resume PROPERTIES LABELS interop)
endif()

# ---- the checkpoints real projects write (issue 16): torchvision models, a reference-script
# checkpoint with an argparse.Namespace, NumPy values, a Lightning-shaped dict, a whole module,
# an os.system payload — written by torch in the test, read and converted by the ckpt tool ----
ckpt_python_has(_have_torchvision torch numpy torchvision)
ckpt_interop_report(torch-objects "${_have_torchvision}" "torch, numpy and torchvision for ${CKPT_PYTHON} (Debian: python3-torch python3-numpy python3-torchvision)")
if(_have_torchvision AND CKPT_BUILD_TOOLS)
  ckpt_add_checked_test(NAME interop.torch.objects EXPECT "torch objects interop ok"
           COMMAND ${CMAKE_COMMAND} -E env PYTHONDONTWRITEBYTECODE=1
                   ${CKPT_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/interop/torch_objects.py
                   $<TARGET_FILE:ckpt_tool> ${CMAKE_CURRENT_BINARY_DIR}/torch-objects)
  set_tests_properties(interop.torch.objects PROPERTIES LABELS interop)
endif()
