# The Python reader of the native format, tools/python/ckptfile.py (issue 20): it reads files the
# C++ writer produced exactly as the library does, refuses hostile files with its own exception,
# and installs with pip offline. Registered when ${CKPT_PYTHON} imports numpy (the install test:
# also pip and setuptools); CKPT_REQUIRE_INTEROP (CI=true) makes a missing one a configure error.
ckpt_python_has(_have_ckptfile_numpy numpy)
ckpt_interop_report(python-reader "${_have_ckptfile_numpy}" "${CKPT_PYTHON} with numpy (Debian: python3-numpy)")
if(_have_ckptfile_numpy)
  add_executable(ckptfile_fixtures interop/ckptfile_fixtures.cpp)
  target_link_libraries(ckptfile_fixtures PRIVATE ckpt::ckpt ckpt_project_flags)
  ckpt_python_has(_have_ckptfile_torch torch)  # torch=True is tested where torch is installed
  set(_ckptfile_torch --no-torch)
  if(_have_ckptfile_torch)
    set(_ckptfile_torch --torch)
  endif()
  ckpt_python_has(_have_ckptfile_pip setuptools pip)  # setuptools first: importing pip first trips its distutils check
  ckpt_interop_report(python-reader-pip "${_have_ckptfile_pip}" "${CKPT_PYTHON} with pip and setuptools (Debian: python3-pip python3-setuptools)")
  set(_ckptfile_scripts ckptfile_read ckptfile_hostile)
  if(_have_ckptfile_pip)
    list(APPEND _ckptfile_scripts ckptfile_pip)
  endif()
  foreach(_script IN LISTS _ckptfile_scripts)
    ckpt_add_checked_test(NAME interop.${_script} EXPECT "ckptfile ok"
             COMMAND ${CMAKE_COMMAND} -E env PYTHONDONTWRITEBYTECODE=1
                     ${CKPT_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/interop/${_script}.py
                     $<TARGET_FILE:ckptfile_fixtures> ${PROJECT_SOURCE_DIR}/tools/python
                     ${CMAKE_CURRENT_BINARY_DIR}/interop-${_script} ${_ckptfile_torch} ${PROJECT_VERSION})
    set_tests_properties(interop.${_script} PROPERTIES LABELS interop)
  endforeach()

  # The README's snippet runs on a file the library wrote.
  set(_ckf_dir ${CMAKE_CURRENT_BINARY_DIR}/readme-ckptfile)
  ckpt_readme_python_snippet(readme_ckptfile.py ${_ckf_dir}/readme_ckptfile.py)
  add_test(NAME interop.readme_ckptfile_write COMMAND ckptfile_fixtures write ${_ckf_dir})
  set_tests_properties(interop.readme_ckptfile_write PROPERTIES LABELS interop FIXTURES_SETUP ckpt_readme_ckptfile)
  ckpt_add_checked_test(NAME interop.readme_ckptfile
           EXPECT "\\(2, 3\\) float32 3.\\('model', '0\\.weight'\\) raw"
           COMMAND ${CMAKE_COMMAND} -E env PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=${PROJECT_SOURCE_DIR}/tools/python
                   ${CKPT_PYTHON} ${_ckf_dir}/readme_ckptfile.py WORKING_DIRECTORY ${_ckf_dir})
  set_tests_properties(interop.readme_ckptfile PROPERTIES LABELS interop FIXTURES_REQUIRED ckpt_readme_ckptfile)
endif()
