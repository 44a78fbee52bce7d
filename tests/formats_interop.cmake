# Interop I (issue 5): the zip code, the NumPy .npy/.npz backends and safetensors (with the
# sharded layout). C++ tests always; tests against files from Hugging Face's own writers only
# when ../shared/fixtures exists; tests against real NumPy (label interop) only when
# ${CKPT_PYTHON} imports numpy.

set(_ckpt_shared_fixtures ${PROJECT_SOURCE_DIR}/../shared/fixtures)
cmake_path(NORMAL_PATH _ckpt_shared_fixtures)

ckpt_add_test(formats.zip formats/test_zip.cpp)
# A 4 GiB zip64 member: hidden from the default Catch2 run, registered under label "long".
add_test(NAME formats.zip.large COMMAND formats.zip "[long]")
set_tests_properties(formats.zip.large PROPERTIES LABELS long TIMEOUT 1800)
ckpt_add_test(formats.npy formats/test_npy.cpp)
ckpt_add_test(formats.safetensors formats/test_safetensors.cpp)
foreach(_t formats.npy formats.safetensors)
  target_compile_definitions(${_t} PRIVATE CKPT_TEST_DATA="${CMAKE_CURRENT_SOURCE_DIR}/data")
endforeach()
if(EXISTS ${_ckpt_shared_fixtures}/hf AND EXISTS ${_ckpt_shared_fixtures}/safetensors)
  message(STATUS "ckpt: safetensors fixture tests enabled (${_ckpt_shared_fixtures})")
  target_compile_definitions(formats.safetensors PRIVATE CKPT_SHARED_FIXTURES="${_ckpt_shared_fixtures}")
else()
  message(STATUS "ckpt: safetensors fixture tests NOT registered: ${_ckpt_shared_fixtures} not found")
endif()

# ---- against real NumPy, and a spec-following safetensors reader/writer in Python ----
add_executable(convert_numpy_safetensors interop/convert_numpy_safetensors.cpp)
target_link_libraries(convert_numpy_safetensors PRIVATE ckpt::ckpt ckpt_project_flags)
# Optimized even in Debug builds: the scripts convert a 65600-member archive, which takes ~20 s
# at -O0 (nlohmann::json and the tree walks) and ~3 s at -O2. Sanitizer flags still apply.
target_compile_options(convert_numpy_safetensors PRIVATE -O2)

ckpt_python_has(_have_numpy numpy)
ckpt_interop_report(numpy-safetensors "${_have_numpy}" "${CKPT_PYTHON} with numpy (Debian: python3-numpy)")
if(_have_numpy)
  foreach(_script numpy_interop safetensors_interop)
    ckpt_add_checked_test(NAME interop.${_script} EXPECT "interop ok"
             COMMAND ${CMAKE_COMMAND} -E env PYTHONDONTWRITEBYTECODE=1
                     ${CKPT_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/interop/${_script}.py
                     $<TARGET_FILE:convert_numpy_safetensors> ${CMAKE_CURRENT_BINARY_DIR}/interop-${_script}
                     ${CMAKE_CURRENT_SOURCE_DIR}/data)
    set_tests_properties(interop.${_script} PROPERTIES LABELS interop)
  endforeach()

  # The README's NumPy snippet runs on an .npz that ckpt wrote (from a small JSON checkpoint).
  set(_np_dir ${CMAKE_CURRENT_BINARY_DIR}/readme-numpy)
  ckpt_readme_python_snippet(readme_numpy.py ${_np_dir}/readme_numpy.py)
  file(WRITE ${_np_dir}/state.json [=[{"format": "ckpt-json", "version": 1,
 "tensors": [{"key": ["model", "weight"], "dtype": "f32", "shape": [2, 3], "data": [1, 2, 3, 4, 5, 6]}],
 "tree": {"dict": [["model", {"dict": [["weight", {"tensor": 0}]]}], ["epoch", {"value": 3}]]}}
]=])
  add_test(NAME interop.readme_numpy_write COMMAND convert_numpy_safetensors ${_np_dir}/state.json ${_np_dir}/run.npz)
  set_tests_properties(interop.readme_numpy_write PROPERTIES LABELS interop FIXTURES_SETUP ckpt_readme_npz)
  ckpt_add_checked_test(NAME interop.readme_numpy EXPECT "\\(2, 3\\) float32 \\['epoch', {'value': 3}\\]" COMMAND ${CKPT_PYTHON} ${_np_dir}/readme_numpy.py WORKING_DIRECTORY ${_np_dir})
  set_tests_properties(interop.readme_numpy PROPERTIES LABELS interop FIXTURES_REQUIRED ckpt_readme_npz)
endif()
