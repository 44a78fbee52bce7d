# ckpt_add_checked_test(NAME <name> EXPECT <regex> [EXPECT_FAIL] [WORKING_DIRECTORY <dir>]
#                       COMMAND <program> [args...])
# A ctest test that passes only when the program's exit status is 0 (non-zero with EXPECT_FAIL)
# *and* its output matches <regex>. Use it instead of PASS_REGULAR_EXPRESSION, which makes
# ctest ignore the exit status (a program that prints the line and then crashes would pass).
function(ckpt_add_checked_test)
  cmake_parse_arguments(PARSE_ARGV 0 A "EXPECT_FAIL" "NAME;EXPECT;WORKING_DIRECTORY" "COMMAND")
  if(NOT A_NAME OR NOT A_COMMAND OR NOT DEFINED A_EXPECT)
    message(FATAL_ERROR "ckpt_add_checked_test: NAME, EXPECT and COMMAND are required")
  endif()
  list(GET A_COMMAND 0 _prog)
  if(TARGET ${_prog})  # add_test resolves a target name only as its own first argument
    list(POP_FRONT A_COMMAND)
    list(PREPEND A_COMMAND "$<TARGET_FILE:${_prog}>")
  endif()
  set(_wd "")
  if(A_WORKING_DIRECTORY)
    set(_wd WORKING_DIRECTORY ${A_WORKING_DIRECTORY})
  endif()
  set(_fail OFF)
  if(A_EXPECT_FAIL)
    set(_fail ON)
  endif()
  add_test(NAME ${A_NAME} ${_wd}
           COMMAND ${CMAKE_COMMAND} "-DEXPECT=${A_EXPECT}" -DEXPECT_FAIL=${_fail}
                   -P ${PROJECT_SOURCE_DIR}/cmake/run_checked.cmake ${A_COMMAND})
endfunction()

# ckpt_readme_snippet(<name> <lang> <out-file>): write README.md's snippet marked
# `<!-- snippet: <name> -->` ... `<!-- end <name> -->` (a ```<lang> block) to <out-file>, so a
# test can build or run it; configure fails when the markers are gone.
function(ckpt_readme_snippet name lang out)
  file(READ ${PROJECT_SOURCE_DIR}/README.md _readme)
  string(REGEX MATCH "<!-- snippet: ${name} -->[\r\n]+```${lang}[\r\n]+([^`]*)```[\r\n]+<!-- end ${name} -->" _m "${_readme}")
  if(NOT CMAKE_MATCH_1)
    message(FATAL_ERROR "README.md lost its marked snippet (<!-- snippet: ${name} -->)")
  endif()
  file(WRITE ${out} "${CMAKE_MATCH_1}")
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/README.md)
endfunction()

# ckpt_readme_python_snippet(<name> <out-file>): the same for a ```python block.
function(ckpt_readme_python_snippet name out)
  ckpt_readme_snippet(${name} python ${out})
endfunction()
