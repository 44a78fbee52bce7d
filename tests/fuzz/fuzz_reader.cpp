// libFuzzer harness for one reader, chosen at compile time by CKPT_FUZZ_FORMAT (a format tag
// such as ckpt::native_format). Each input is written to a file (readers take paths) and
// loaded eagerly and with mmap; a ckpt::error is the expected outcome for bad input, anything
// else (a crash, a sanitizer report, another exception type) is a finding.
#include <unistd.h>

#include <ckpt/ckpt.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#ifndef CKPT_FUZZ_FORMAT
#error "define CKPT_FUZZ_FORMAT to a format tag"
#endif

namespace {
const std::string& scratch_path() {
  static const std::string p = [] {
    const char* dir = std::getenv("CKPT_FUZZ_DIR");  // default: a RAM-backed directory when there is one
    const std::string base = dir ? dir : (std::filesystem::is_directory("/dev/shm") ? "/dev/shm" : "/tmp");
    return base + "/ckpt-fuzz-" + std::to_string(::getpid()) + std::string(ckpt::archive_traits<CKPT_FUZZ_FORMAT>::extensions[0]);
  }();
  return p;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string& p = scratch_path();
  if (FILE* f = std::fopen(p.c_str(), "wb")) {
    if (size) std::fwrite(data, 1, size, f);
    std::fclose(f);
  } else {
    std::abort();
  }
  for (bool mmap : {false, true}) {
    try {
      ckpt::LoadOptions o;
      o.mmap = mmap;
      o.verify = true;
      const ckpt::StateDict sd = ckpt::load_as<CKPT_FUZZ_FORMAT>(p, o);
      (void)sd.tensor_bytes();
    } catch (const ckpt::error&) {
    }
  }
  return 0;
}
