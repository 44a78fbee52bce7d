# Eigen integration (issue 17): <ckpt/integrations/eigen.hpp> against Debian's libeigen3-dev,
# found with find_package(Eigen3). Registered only when found, and said so; with
# CKPT_REQUIRE_INTEROP (CI=true) a missing Eigen is a configure error. The NumPy check needs
# ${CKPT_PYTHON} with numpy as well.
find_package(Eigen3 3.3 CONFIG QUIET)
ckpt_interop_report(eigen "${Eigen3_FOUND}" "Eigen3 (Debian: libeigen3-dev)" "Eigen ${Eigen3_VERSION}")
if(Eigen3_FOUND)
  ckpt_add_test(integrations.eigen integrations/test_eigen.cpp)
  target_link_libraries(integrations.eigen PRIVATE Eigen3::Eigen)

  ckpt_python_has(_have_numpy_for_eigen numpy)
  ckpt_interop_report(eigen-numpy "${_have_numpy_for_eigen}" "${CKPT_PYTHON} with numpy (Debian: python3-numpy)")
  if(_have_numpy_for_eigen)
    add_executable(eigen_numpy_tool interop/eigen_numpy_tool.cpp)
    target_link_libraries(eigen_numpy_tool PRIVATE ckpt::ckpt ckpt_project_flags Eigen3::Eigen)
    ckpt_add_checked_test(NAME interop.eigen_numpy EXPECT "eigen numpy interop ok"
             COMMAND ${CMAKE_COMMAND} -E env PYTHONDONTWRITEBYTECODE=1
                     ${CKPT_PYTHON} ${CMAKE_CURRENT_SOURCE_DIR}/interop/eigen_numpy.py
                     $<TARGET_FILE:eigen_numpy_tool> ${CMAKE_CURRENT_BINARY_DIR}/interop-eigen-numpy)
    set_tests_properties(interop.eigen_numpy PROPERTIES LABELS interop)
  endif()
endif()
