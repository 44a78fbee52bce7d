// ckpt/ckpt.hpp — umbrella include: everything a training loop needs.
#pragma once

#include "archive_kit.hpp"     // SkeletonBuilder, parse_json_limited: for custom backends
#include "archive/detect.hpp"  // built-in formats
#include "archive/json.hpp"    // .json
#include "archive/memory.hpp"  // in-memory (tests)
#include "archive/native.hpp"  // .ckpt
#include "archive/npy.hpp"     // .npy, .npz (NumPy)
#include "archive/safetensors.hpp"  // .safetensors and the sharded layout
#include "archive/torch.hpp"   // .pt (PyTorch torch.save)
#include "checkpoint.hpp"      // Checkpoint, RestoreStatus
#include "concepts.hpp"        // Checkpointable, CKPT_FIELDS
#include "dtype.hpp"           // DType
#include "error.hpp"           // exceptions
#include "manager.hpp"         // CheckpointManager
#include "save_load.hpp"       // save / load / load_into / verify
#include "state_dict.hpp"      // StateDict
#include "tensor.hpp"          // Tensor
#include "version.hpp"         // versions
