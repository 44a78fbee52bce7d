# A consumer that knows only pkg-config, as a Makefile would: `pkg-config --cflags --libs ckpt`
# against ckpt installed in the build tree (like package.find_package), whose headers are in
# INCLUDE_DIR,
# then the compiler on ../consumer.cpp with those flags, then the program.
#   cmake -DPKG_CONFIG=<exe> -DINCLUDE_DIR=<dir> -DPC_DIR=<its .pc folder> -DCXX=<compiler>
#         -DVERSION=<project version> -DOUT=<folder> -P consumer.cmake
foreach(v PKG_CONFIG INCLUDE_DIR PC_DIR CXX VERSION OUT)
  if(NOT DEFINED ${v})
    message(FATAL_ERROR "consumer.cmake: -D${v}=... is required")
  endif()
endforeach()
set(ENV{PKG_CONFIG_PATH} "${PC_DIR}")
function(pkg_config out)
  execute_process(COMMAND ${PKG_CONFIG} --print-errors ${ARGN} ckpt OUTPUT_VARIABLE o RESULT_VARIABLE rc
                  OUTPUT_STRIP_TRAILING_WHITESPACE)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "pkg-config ${ARGN} ckpt failed (${rc}) with PKG_CONFIG_PATH=${PC_DIR}")
  endif()
  set(${out} "${o}" PARENT_SCOPE)
endfunction()

pkg_config(version --modversion)
pkg_config(includedir --variable=includedir)
pkg_config(cflags --cflags)
pkg_config(libs --libs)
message(STATUS "pkg-config ckpt ${version}: ${cflags} ${libs}")
if(NOT version STREQUAL VERSION)
  message(FATAL_ERROR "ckpt.pc says version ${version}, the project is ${VERSION}")
endif()
# The headers must come from this install (the .pc follows its prefix), not from elsewhere.
file(REAL_PATH "${includedir}" includedir)
file(REAL_PATH "${INCLUDE_DIR}" want)
if(NOT includedir STREQUAL want OR NOT EXISTS ${includedir}/ckpt/ckpt.hpp)
  message(FATAL_ERROR "ckpt.pc's includedir is ${includedir}, expected ${want} (with ckpt/ckpt.hpp)")
endif()

separate_arguments(cflags UNIX_COMMAND "${cflags}")
separate_arguments(libs UNIX_COMMAND "${libs}")
file(MAKE_DIRECTORY ${OUT})
execute_process(COMMAND ${CXX} ${cflags} ${CMAKE_CURRENT_LIST_DIR}/../consumer.cpp -o ${OUT}/consumer ${libs}
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "compiling the consumer with pkg-config's flags failed (${rc})")
endif()
execute_process(COMMAND ${OUT}/consumer ${OUT} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "the consumer failed (${rc})")
endif()
