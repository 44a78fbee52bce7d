# Installation: headers, the exported ckpt::ckpt target, a CMake package config under
# share/cmake/ckpt (find_package(ckpt CONFIG)) and a pkg-config file.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/ckpt DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS ckpt EXPORT ckptTargets)
set(CKPT_CMAKE_DIR ${CMAKE_INSTALL_DATADIR}/cmake/ckpt)
install(EXPORT ckptTargets NAMESPACE ckpt:: DESTINATION ${CKPT_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/ckptConfig.cmake.in
  ${PROJECT_BINARY_DIR}/ckptConfig.cmake INSTALL_DESTINATION ${CKPT_CMAKE_DIR})
# Header-only: the version file must not pin the consumer's pointer size.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/ckptConfigVersion.cmake
  COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
install(FILES ${PROJECT_BINARY_DIR}/ckptConfig.cmake ${PROJECT_BINARY_DIR}/ckptConfigVersion.cmake
  DESTINATION ${CKPT_CMAKE_DIR})
# ckpt.pc locates its prefix from where it lies (${pcfiledir}), so it stays right when the install
# moves (cmake --install --prefix, DESTDIR, a copied tree); absolute install dirs are kept as given.
set(_ckpt_pc_dir ${CMAKE_INSTALL_DATADIR}/pkgconfig)
set(CKPT_PC_PREFIX ${CMAKE_INSTALL_PREFIX})
if(NOT IS_ABSOLUTE ${_ckpt_pc_dir})
  file(RELATIVE_PATH _ckpt_pc_up /${_ckpt_pc_dir} /)
  string(REGEX REPLACE "/$" "" _ckpt_pc_up "${_ckpt_pc_up}")
  set(CKPT_PC_PREFIX "\${pcfiledir}/${_ckpt_pc_up}")
endif()
set(CKPT_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
if(IS_ABSOLUTE ${CMAKE_INSTALL_INCLUDEDIR})
  set(CKPT_PC_INCLUDEDIR ${CMAKE_INSTALL_INCLUDEDIR})
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/ckpt.pc.in ${PROJECT_BINARY_DIR}/ckpt.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/ckpt.pc DESTINATION ${_ckpt_pc_dir})
