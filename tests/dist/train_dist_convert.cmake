# ctest script: a checkpoint examples/train_dist saved on 3 ranks, consolidated by
# `ckpt convert DIR out.pt`, loads in Python's torch (torch.load with the installed version's
# default) with the global shapes, and its weight equals what ckpt reads from the distributed
# directory. Every program's exit status is checked.
#   cmake -DMPIEXEC=<mpiexec> -DNP=<-n flag> -DTRAIN=<train_dist> -DTOOL=<ckpt> -DPYTHON=<python>
#         -DWORK=<dir> -P train_dist_convert.cmake
cmake_minimum_required(VERSION 3.25)

function(run what)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${what} failed (${rc}):\n${out}\n${err}")
  endif()
  set(last_out "${out}" PARENT_SCOPE)
endfunction()

file(REMOVE_RECURSE ${WORK})
run("train_dist on 3 ranks" ${MPIEXEC} ${NP} 3 --oversubscribe ${TRAIN} --ckpt-dir ${WORK}/run --epochs 2)
run("ckpt convert" ${TOOL} convert ${WORK}/run/epoch-2 ${WORK}/whole.pt)
run("ckpt convert to npz" ${TOOL} convert ${WORK}/run/epoch-2 ${WORK}/whole.npz)
run("torch.load" ${PYTHON} -c "
import sys, numpy as np, torch
sd = torch.load(sys.argv[1])
w = sd['model']['weight']
assert tuple(w.shape) == (64, 32), w.shape
assert tuple(sd['model']['bias'].shape) == (64,)
assert tuple(sd['optimizer']['exp_avg_weight'].shape) == (64, 32)
assert sd['epoch'] == 2, sd['epoch']
ref = np.load(sys.argv[2])
assert np.array_equal(w.numpy(), ref['model.weight']), 'weight differs from the npz consolidation'
print('torch', torch.__version__, 'loaded', tuple(w.shape))
" ${WORK}/whole.pt ${WORK}/whole.npz)
message("${last_out}train_dist checkpoint consolidated: torch.load sees [64, 32]")
