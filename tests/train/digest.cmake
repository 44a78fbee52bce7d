# Helpers of the resume tests (cmake -P scripts): the state digest and the per-epoch loss lines
# that the training examples print.

# The hex digest of the last "state-digest <hex>" line of `text`; FATAL_ERROR when there is none.
function(digest_of text out)
  string(REGEX MATCH "state-digest ([0-9a-f]+)" _ "${text}")
  if(NOT CMAKE_MATCH_1)
    message(FATAL_ERROR "no state-digest in:\n${text}")
  endif()
  set(${out} ${CMAKE_MATCH_1} PARENT_SCOPE)
endfunction()

# The "epoch E loss X" lines of `text`, as a list.
function(loss_lines text out)
  string(REGEX MATCHALL "epoch [0-9]+ loss [^ \n]+" lines "${text}")
  set(${out} "${lines}" PARENT_SCOPE)
endfunction()
