// libFuzzer harness for one fuzz target, chosen at compile time by CKPT_FUZZ_TARGET (a name
// from tests/fuzz/fuzz_targets.hpp: native json safetensors npy npz pt zip pickle dist_metadata).
// The input is read from memory; see fuzz_targets.hpp for what counts as a finding.
#include <cstddef>
#include <cstdint>

#include "fuzz_targets.hpp"

#ifndef CKPT_FUZZ_TARGET
#error "define CKPT_FUZZ_TARGET to a fuzz target name"
#endif

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static const std::string target = CKPT_FUZZ_TARGET;
  ckpt_fuzz::run(target, {reinterpret_cast<const std::byte*>(data), size}, /*all_modes=*/false);
  return 0;
}
