# ctest script: examples/train_dist run on 4 ranks uninterrupted, and run on 4 ranks stopped
# after epoch 2, resumed on 2 ranks and stopped after epoch 4, resumed on 3 ranks to the end,
# give the same state-digest and the same loss for every epoch; each resume names the
# checkpoint the previous run saved last. Every run's exit status is checked.
#   cmake -DMPIEXEC=<mpiexec> -DNP=<-n flag> -DTRAIN=<train_dist> -DWORK=<dir> -DEPOCHS=6 -P train_dist_resume.cmake
cmake_minimum_required(VERSION 3.25)

function(run_train ranks dir out)
  execute_process(COMMAND ${MPIEXEC} ${NP} ${ranks} --oversubscribe ${TRAIN} --ckpt-dir ${dir} --epochs ${EPOCHS} ${ARGN}
                  RESULT_VARIABLE rc OUTPUT_VARIABLE stdout ERROR_VARIABLE stderr)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "train_dist on ${ranks} ranks ${ARGN} failed (${rc}):\n${stdout}\n${stderr}")
  endif()
  set(${out} "${stdout}" PARENT_SCOPE)
endfunction()

include(${CMAKE_CURRENT_LIST_DIR}/../train/digest.cmake)  # digest_of, loss_lines

file(REMOVE_RECURSE ${WORK})
run_train(4 ${WORK}/full full)
digest_of("${full}" want)
loss_lines("${full}" want_losses)
list(LENGTH want_losses n)
if(NOT n EQUAL EPOCHS)
  message(FATAL_ERROR "the uninterrupted run printed ${n} epochs, not ${EPOCHS}:\n${full}")
endif()

set(dir ${WORK}/resharded)
set(losses "")
set(previous "")
foreach(stage "4;2" "2;4" "3;")
  list(GET stage 0 ranks)
  list(GET stage 1 stop)
  if(stop)
    run_train(${ranks} ${dir} out --stop-after ${stop})
    if(NOT out MATCHES "stopping after epoch ${stop}\n")
      message(FATAL_ERROR "the run on ${ranks} ranks did not stop after epoch ${stop}:\n${out}")
    endif()
  else()
    run_train(${ranks} ${dir} out)
  endif()
  if(previous AND NOT out MATCHES "resumed from [^\n]*epoch-${previous} at epoch ${previous} on ${ranks} ranks")
    message(FATAL_ERROR "the run on ${ranks} ranks did not resume from epoch ${previous}:\n${out}")
  endif()
  loss_lines("${out}" part)
  list(APPEND losses ${part})
  set(previous ${stop})
endforeach()
digest_of("${out}" got)
if(NOT got STREQUAL want)
  message(FATAL_ERROR "4 -> 2 -> 3 ranks: digest ${got} != 4 ranks uninterrupted ${want}")
endif()
if(NOT losses STREQUAL want_losses)
  message(FATAL_ERROR "printed losses differ\n  resharded: ${losses}\n  uninterrupted: ${want_losses}")
endif()
message("train_dist resumed on 4 -> 2 -> 3 ranks: ${got} (identical to 4 ranks uninterrupted, same losses)")
