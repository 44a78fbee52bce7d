# ctest script: an uninterrupted run and runs interrupted — after k epochs, inside an epoch
# (--stop-after-batch: a checkpoint saved after batch B of all, mid-epoch) and twice — and
# resumed in new processes give the identical state-digest and print the identical loss for
# every epoch they finish; stopped at epoch boundaries only, the final checkpoints are
# byte-identical too (a mid-epoch stop saves once more, so its save_counter differs).
#   cmake -DTRAIN=<train_linear or libtorch_train> -DWORK=<dir> -DFORMAT=<format> -DEPOCHS=<N>
#         [-DEPOCH_STOPS_ONLY=ON] -P resume_exact.cmake
# EPOCH_STOPS_ONLY: the program has no --stop-after-batch (libtorch_train); epoch stops only.
cmake_minimum_required(VERSION 3.25)

function(run_train dir out)
  execute_process(COMMAND ${TRAIN} --ckpt-dir ${dir} --epochs ${EPOCHS} --format ${FORMAT} ${ARGN}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE stdout ERROR_VARIABLE stderr)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${TRAIN} ${ARGN} failed (${rc}):\n${stdout}\n${stderr}")
  endif()
  set(${out} "${stdout}" PARENT_SCOPE)
endfunction()

include(${CMAKE_CURRENT_LIST_DIR}/digest.cmake)  # digest_of, loss_lines

file(REMOVE_RECURSE ${WORK})
run_train(${WORK}/full full_out)
digest_of("${full_out}" full)
loss_lines("${full_out}" full_losses)
file(GLOB final_full ${WORK}/full/step-* ${WORK}/full/epoch-*)  # train_linear, libtorch_train
list(SORT final_full COMPARE NATURAL)
list(GET final_full -1 final_full)
message(STATUS "${FORMAT}: uninterrupted ${EPOCHS} epochs -> ${full}")

# Stops: a number k is --stop-after k (epochs); bN is --stop-after-batch N (64 batches an
# epoch: b1 is the first batch, b100 inside epoch 2, b300 inside epoch 5, b128 an epoch end).
math(EXPR half "${EPOCHS} / 2")
math(EXPR last "${EPOCHS} - 1")
set(cases "1" "${half}" "${last}" "2,${last}")
if(NOT EPOCH_STOPS_ONLY)
  list(APPEND cases "b1" "b100" "b128" "b100,b300" "1,b100")
endif()
foreach(case IN LISTS cases)
  string(REPLACE "," ";" stops "${case}")
  set(dir ${WORK}/stop-${case})
  set(resumed_losses "")
  set(extra_save OFF)
  foreach(k IN LISTS stops)
    if(k MATCHES "^b([0-9]+)$")
      set(b ${CMAKE_MATCH_1})
      run_train(${dir} out --stop-after-batch ${b})
      if(NOT out MATCHES "stopping after step ${b}\n")
        message(FATAL_ERROR "run did not stop after step ${b}:\n${out}")
      endif()
      if(out MATCHES "step ${b} \\(epoch [0-9]+, batch [0-9]+\\) saved")
        set(extra_save ON)  # saved inside an epoch
      endif()
    else()
      run_train(${dir} out --stop-after ${k})
      if(NOT out MATCHES "stopping after epoch ${k}\n")
        message(FATAL_ERROR "run did not stop after epoch ${k}:\n${out}")
      endif()
    endif()
    string(REGEX MATCHALL "saved [^\n]+" saved "${out}")
    list(GET saved -1 saved)
    string(REPLACE "saved " "" saved "${saved}")
    loss_lines("${out}" part)
    list(APPEND resumed_losses ${part})
  endforeach()
  run_train(${dir} out)
  string(FIND "${out}" "resumed from ${saved} at " at)
  if(at EQUAL -1)
    message(FATAL_ERROR "did not resume from ${saved}, the checkpoint the interrupted run saved last:\n${out}")
  endif()
  digest_of("${out}" d)
  if(NOT d STREQUAL full)
    message(FATAL_ERROR "${FORMAT}: stopped after ${case}: digest ${d} != uninterrupted ${full}")
  endif()
  loss_lines("${out}" part)
  list(APPEND resumed_losses ${part})
  if(NOT resumed_losses STREQUAL full_losses)
    message(FATAL_ERROR "${FORMAT}: stopped after ${case}: printed losses differ\n  interrupted: ${resumed_losses}\n  uninterrupted: ${full_losses}")
  endif()
  if(NOT extra_save)
    string(REPLACE "${WORK}/full" "${dir}" final_resumed "${final_full}")
    execute_process(COMMAND ${CMAKE_COMMAND} -E compare_files ${final_full} ${final_resumed} RESULT_VARIABLE same)
    if(NOT same EQUAL 0)
      message(FATAL_ERROR "${FORMAT}: final checkpoints differ: ${final_full} vs ${final_resumed}")
    endif()
    set(bytes ", final checkpoint bytes identical")
  else()
    set(bytes "")
  endif()
  message(STATUS "${FORMAT}: stopped after ${case}, resumed -> ${d} (identical, same losses${bytes})")
endforeach()
message("resume exact: ${FORMAT} ${full}")
