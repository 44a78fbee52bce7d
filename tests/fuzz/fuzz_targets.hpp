// What the fuzzers run on each input, shared by the libFuzzer harness (tests/fuzz/fuzz_target.cpp)
// and by the default test suite, which replays every input a fuzzer ever crashed on
// (tests/fuzz/regressions/<target>/, see tests/reliability/test_fuzz_regressions.cpp). Inputs are
// read from memory (io::Source::borrowed): no file per input. A fuzzer loads each input in one
// of the target's modes (eager or mmap; for .pt files and pickles also with inert_objects), picked by the
// input's length, so that every mode is fuzzed at the speed of one load; replays use them all. A ckpt::error is the expected
// outcome for bad input; anything else (a crash, a sanitizer report, another exception type, an
// allocation over the fuzzers' -malloc_limit_mb) is a finding. In fuzzing builds
// (FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION) checksum mismatches are ignored, so mutated inputs
// reach the parsers behind the CRCs.
#pragma once

#include <ckpt/ckpt.hpp>
#include <ckpt/dist.hpp>
#include <ckpt/io/memory.hpp>
#include <cstddef>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <span>
#include <string>
#include <vector>

namespace ckpt_fuzz {

/// The options every reader input is loaded with, one load each.
inline const std::vector<ckpt::LoadOptions>& reader_modes() {
  static const std::vector<ckpt::LoadOptions> modes = [] {
    ckpt::LoadOptions eager, mapped;
    eager.verify = true;
    mapped.mmap = true;
    mapped.verify = true;
    return std::vector<ckpt::LoadOptions>{eager, mapped};
  }();
  return modes;
}

/// `o` reading Python objects as inert records (LoadOptions::inert_objects).
inline ckpt::LoadOptions inert(ckpt::LoadOptions o) {
  o.inert_objects = true;
  return o;
}

/// The options .pt files are loaded with: the reader modes, refusing objects and reading them
/// as inert records.
inline const std::vector<ckpt::LoadOptions>& pt_modes() {
  static const std::vector<ckpt::LoadOptions> modes = [] {
    auto m = reader_modes();
    for (const auto& o : reader_modes()) m.push_back(inert(o));
    return m;
  }();
  return modes;
}

/// The options every pickle is loaded with (through the torch reader), one load each. A new
/// reading mode is one more line here.
inline const std::vector<ckpt::LoadOptions>& pickle_modes() {
  static const std::vector<ckpt::LoadOptions> modes = {
      ckpt::LoadOptions{},
      inert(ckpt::LoadOptions{}),
  };
  return modes;
}

/// Which of `modes` to run `in` in: all of them, or the one its length picks.
inline std::span<const ckpt::LoadOptions> modes_for(const std::vector<ckpt::LoadOptions>& modes, std::span<const std::byte> in, bool all) {
  if (all) return modes;
  return std::span(modes).subspan(in.size() % modes.size(), 1);
}

/// Load `in` as format F (in every reader mode, or in the one its length picks) and touch
/// every tensor's bytes.
template <class F>
void reader(std::span<const std::byte> in, bool all_modes = true, const std::vector<ckpt::LoadOptions>& modes = reader_modes()) {
  const auto src = ckpt::io::Source::borrowed(in, "<fuzz input>");
  for (const auto& o : modes_for(modes, in, all_modes)) {
    try {
      const ckpt::StateDict sd = ckpt::load_as<F>(src, o);
      (void)sd.tensor_bytes();
    } catch (const ckpt::error&) {
    }
  }
}

/// Open `in` as a zip and read every member whole, its first bytes, and a range in its middle.
inline void zip(std::span<const std::byte> in) {
  try {
    ckpt::detail::zip::Reader r(ckpt::io::Source::borrowed(in, "<fuzz input>"));
    for (const auto& e : r.entries()) {
      (void)r.find(e.name);
      try {
        (void)r.read_prefix(e, 64);
        (void)r.read(e);
        if (e.uncompressed_size >= 3) {
          std::byte mid[2];
          r.read_range(e, e.uncompressed_size / 2 - 1, mid, false);
          r.read_range(e, e.uncompressed_size / 2 - 1, mid, true);
        }
      } catch (const ckpt::error&) {
      }
    }
  } catch (const ckpt::error&) {
  }
}

/// `pickle` as the data.pkl of a torch.save zip, with a zero-filled record for each storage it
/// names (as far as the unpickler gets: its hooks record storages as they appear), so that the
/// whole torch path runs: unpickling, tensor rebuilding, the tree.
inline std::vector<std::byte> torch_zip_around(std::span<const std::byte> pickle) {
  std::map<std::string, std::uint64_t> storages;
  try {
    // Inert, so that a pickle holding Python objects still names every storage inside them.
    ckpt::detail::torch_pickle::Hooks hooks(false, /*inert=*/true);
    ckpt::detail::pickle::Unpickler u(pickle, "<fuzz input>", hooks);
    try {
      (void)u.load();
    } catch (const ckpt::error&) {
    }
    std::uint64_t total = 0;
    for (const auto& [key, bytes] : hooks.root_sizes)
      if ((total += bytes) <= (std::uint64_t{1} << 20)) storages.emplace(key, bytes);
  } catch (const ckpt::error&) {
  }
  ckpt::io::MemoryWriter out;
  ckpt::detail::zip::Writer z(out);
  z.add("archive/data.pkl", pickle);
  for (const auto& [key, bytes] : storages) {
    try {
      z.add("archive/data/" + key, std::vector<std::byte>(static_cast<std::size_t>(bytes)), false, 64);
    } catch (const ckpt::error&) {  // a key that cannot be a member name: the record stays missing
    }
  }
  const std::string version = "3\n";
  z.add("archive/version", std::as_bytes(std::span(version)));
  z.finish();
  return out.take();
}

/// Load `in` as a torch.save file's pickle (in every pickle mode, or in the one its length picks).
inline void pickle(std::span<const std::byte> in, bool all_modes = true) {
  const auto file = torch_zip_around(in);
  const auto src = ckpt::io::Source::borrowed(file, "<fuzz input>");
  for (const auto& o : modes_for(pickle_modes(), in, all_modes)) {
    try {
      const ckpt::StateDict sd = ckpt::load_as<ckpt::torch_format>(src, o);
      (void)sd.tensor_bytes();
    } catch (const ckpt::error&) {
    }
  }
}

/// `in` as a distributed checkpoint's metadata.json: parsed and checked, its tree rebuilt, and
/// (when its data files are small) every tensor read whole and in its middle block from
/// zero-filled data files of the recorded sizes — the reader's run and block arithmetic on
/// whatever chunks the metadata claims.
inline void dist_metadata(std::span<const std::byte> in) {
  try {
    const auto m = ckpt::dist::parse_metadata(std::string_view(reinterpret_cast<const char*>(in.data()), in.size()), "<fuzz input>");
    (void)ckpt::dist::detail_load::saved_tree(m, "<fuzz input>");
    std::uint64_t file_bytes = 0;
    for (const auto& f : m.files) file_bytes += f.size;
    if (file_bytes > (std::uint64_t{1} << 20)) return;
    ckpt::dist::ChunkReader reader(m, true, [&](std::size_t i) {
      return ckpt::io::Source::memory(std::make_shared<const std::vector<std::byte>>(static_cast<std::size_t>(m.files[i].size)), m.files[i].name);
    });
    std::uint64_t budget = std::uint64_t{8} << 20;
    for (const auto& t : m.tensors) {
      const auto nbytes = *ckpt::checked_nbytes(t.dtype, t.shape);  // parse_metadata checked it
      if (nbytes > budget) continue;
      budget -= nbytes;
      (void)reader.read_all(t);
      ckpt::dist::Box mid{t.shape, t.shape};
      for (std::size_t j = 0; j < t.shape.size(); ++j) mid.offsets[j] = t.shape[j] / 4, mid.shape[j] = t.shape[j] / 2;
      ckpt::Tensor part = ckpt::Tensor::empty(t.dtype, mid.shape);
      reader.read(t, mid, part.mutable_data());
    }
  } catch (const ckpt::error&) {
  }
}

/// The fuzz targets by name (the directory names under tests/fuzz/corpus and regressions).
inline void run(const std::string& target, std::span<const std::byte> in, bool all_modes = true) {
  if (target == "native") reader<ckpt::native_format>(in, all_modes);
  else if (target == "json") reader<ckpt::json_format>(in, all_modes);
  else if (target == "safetensors") reader<ckpt::safetensors_format>(in, all_modes);
  else if (target == "npy") reader<ckpt::npy_format>(in, all_modes);
  else if (target == "npz") reader<ckpt::npz_format>(in, all_modes);
  else if (target == "pt") reader<ckpt::torch_format>(in, all_modes, pt_modes());
  else if (target == "zip") zip(in);
  else if (target == "pickle") pickle(in, all_modes);
  else if (target == "dist_metadata") dist_metadata(in);
  else throw std::invalid_argument("unknown fuzz target '" + target + "'");
}

}  // namespace ckpt_fuzz
