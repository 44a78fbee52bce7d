// ckpt/dist.hpp — distributed checkpoints (docs/DISTRIBUTED.md): ShardedTensor, the Communicator
// concept with SingleProcess, the collective save and the resharding load. Not included by
// ckpt.hpp; MPI's communicator is in ckpt/dist/mpi.hpp, included only by programs linking MPI.
#pragma once

#include "dist/box.hpp"       // Box, intersect, split_box
#include "dist/comm.hpp"      // Communicator, SingleProcess, rank_error
#include "dist/load.hpp"      // load, load_state, load_global, verify
#include "dist/manager.hpp"   // CheckpointManager over a communicator
#include "dist/metadata.hpp"  // Metadata, parse_metadata
#include "dist/save.hpp"      // save
#include "dist/sharded.hpp"   // ShardedTensor, Chunk
