// Replays, in the default suite, every input a fuzzer ever crashed on (tests/fuzz/regressions/
// <target>/, one directory per fuzz target) and every seed of the fuzzers' corpora, through the
// fuzzers' own targets (tests/fuzz/fuzz_targets.hpp). This program is built like the fuzzers,
// with FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, so checksum mismatches are ignored as they
// were when the fuzzer found the input; a crash, a sanitizer report (asan preset) or an
// exception other than ckpt::error fails it. Cases below also check what each fixed finding
// now raises.
#include "ckpt_catch.hpp"

#include <filesystem>
#include <fstream>
#include <iterator>

#include "fuzz_targets.hpp"

#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#error "build this test like the fuzzers, with FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION"
#endif

namespace fs = std::filesystem;

namespace {
const fs::path fuzz_dir = CKPT_FUZZ_DIR;
const char* const targets[] = {"native", "json", "safetensors", "npy", "npz", "pt", "zip", "pickle", "dist_metadata"};

std::vector<std::byte> bytes_of(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  const std::vector<char> c{std::istreambuf_iterator<char>(f), {}};
  const auto* b = reinterpret_cast<const std::byte*>(c.data());
  return {b, b + c.size()};
}
/// Feed every file under fuzz_dir/<sub>/<target>/ to the target; the number fed.
int replay(const std::string& sub) {
  int n = 0;
  for (const std::string target : targets) {
    const auto dir = fuzz_dir / sub / target;
    if (!fs::is_directory(dir)) continue;
    for (const auto& e : fs::directory_iterator(dir)) {
      INFO(e.path().string());
      CHECK_NOTHROW(ckpt_fuzz::run(target, bytes_of(e.path())));
      ++n;
    }
  }
  return n;
}
}  // namespace

TEST_CASE("every input a fuzzer crashed on runs to a ckpt::error or a load", "[reliability][fuzz]") {
  const int n = replay("regressions");
  WARN(n << " regression inputs replayed");
  CHECK(n >= 5);
}

TEST_CASE("every fuzzer seed runs through its target", "[reliability][fuzz]") {
  const int n = replay("corpus");
  WARN(n << " seeds replayed");
  CHECK(n >= 40);
  for (const std::string target : targets) {
    INFO(target);
    CHECK(fs::is_directory(fuzz_dir / "corpus" / target));
  }
}

TEST_CASE("the fuzz targets load what they are given: a seed of each format loads in every mode", "[reliability][fuzz]") {
  // A harness that always fails early would replay anything without a finding; these seeds load.
  for (const auto& [target, file] : std::vector<std::pair<std::string, std::string>>{
           {"native", "seed2-zlib.ckpt"}, {"json", "seed2-raw.json"}, {"safetensors", "seed2-raw.safetensors"},
           {"npy", "seed3-raw.npy"}, {"npz", "seed2-raw.npz"}, {"pt", "seed2-raw.pt"}}) {
    INFO(target << " " << file);
    const auto b = bytes_of(fuzz_dir / "corpus" / target / file);
    REQUIRE(!b.empty());
    for (const auto& o : ckpt_fuzz::reader_modes()) CHECK(ckpt::load(ckpt::io::Source::borrowed(b, file), o).tensor_bytes() > 0);
  }
  const auto pkl = bytes_of(fuzz_dir / "corpus" / "pickle" / "seed2-raw.pkl");
  const auto file = ckpt_fuzz::torch_zip_around(pkl);
  const auto sd = ckpt::load_as<ckpt::torch_format>(ckpt::io::Source::borrowed(file, "pickle"));
  CHECK(sd.at(ckpt::KeyPath{"model", "0.weight"}).tensor().numel() == 6);
}

TEST_CASE("the .pt and pickle fuzzers reach inert records: the objects seed loads with inert_objects and is refused without", "[reliability][fuzz]") {
  // py-objects.pt (tests/fuzz/pickle_seeds.py): a Namespace, NumPy values, sets, bytes, a module
  // and an os.system payload. A pt mode without inert_objects stops at the first global; with it
  // the module's tensors and the payload's record are reached.
  const auto check_inert = [](const ckpt::StateDict& sd) {
    CHECK(sd.at(ckpt::KeyPath{"model", "$state", "_modules", "0", "$state", "_parameters", "weight"}).tensor().numel() == 4);
    CHECK(sd.at(ckpt::KeyPath{"payload"}).value().at("$class") == "posix.system");
  };
  const auto pt = bytes_of(fuzz_dir / "corpus" / "pt" / "py-objects.pt");
  int inert_modes = 0;
  for (const auto& o : ckpt_fuzz::pt_modes()) {
    INFO("mmap " << o.mmap << " inert " << o.inert_objects);
    const auto src = ckpt::io::Source::borrowed(pt, "py-objects.pt");
    if (o.inert_objects) {
      ++inert_modes;
      check_inert(ckpt::load_as<ckpt::torch_format>(src, o));
    } else {
      CHECK_THROWS_AS(ckpt::load_as<ckpt::torch_format>(src, o), ckpt::format_error);
    }
  }
  CHECK(inert_modes == 2);
  const auto file = ckpt_fuzz::torch_zip_around(bytes_of(fuzz_dir / "corpus" / "pickle" / "py-objects.pkl"));
  inert_modes = 0;
  for (const auto& o : ckpt_fuzz::pickle_modes()) {
    if (!o.inert_objects) continue;
    ++inert_modes;
    check_inert(ckpt::load_as<ckpt::torch_format>(ckpt::io::Source::borrowed(file, "py-objects.pkl"), o));
  }
  CHECK(inert_modes == 1);
}

TEST_CASE("fuzz finding (pt, legacy file): a float dict key beyond int64 is hashed without an undefined conversion", "[reliability][fuzz]") {
  // The unpickler merged a float key with an equal int key by casting it to int64 first; for
  // 2.4e35 that cast is undefined (UBSan: "outside the range of representable values"). This is
  // pickle.dumps({2.4e35: 1, 1.0: 2, nan: 3, -1e300: 4}, protocol=2); the crash input itself is
  // regressions/pt/crash-legacy-float-dict-key-beyond-int64.pt. The unpickler keeps the four
  // keys apart; as a checkpoint tree, float keys are refused (unsupported_error).
  const char* hex = "80027d7100284747471c74f0225d034b01473ff00000000000004b02477ff80000000000004b0347fe37e43c8800759c4b04752e";
  std::vector<std::byte> pkl;
  for (const char* h = hex; h[0] && h[1]; h += 2) pkl.push_back(static_cast<std::byte>(std::stoi(std::string(h, 2), nullptr, 16)));
  ckpt::detail::pickle::Hooks hooks;
  ckpt::detail::pickle::Unpickler u(pkl, "keys.pkl", hooks);
  const auto* d = u.load();
  REQUIRE(d->is(ckpt::detail::pickle::Object::Type::dict));
  CHECK(d->dict_size() == 4);
  const auto file = ckpt_fuzz::torch_zip_around(pkl);
  CHECK_THROWS_AS(ckpt::load_as<ckpt::torch_format>(ckpt::io::Source::borrowed(file, "keys.pt")), ckpt::unsupported_error);
}
