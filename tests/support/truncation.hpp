// Truncation checks shared by the format tests: a file cut anywhere is structurally short, so
// loading it raises format_error (corrupt_error never: no checksum is reached) naming the file
// and the byte offset where the reader found it short — not just some ckpt::error.
#pragma once

#include <ckpt/ckpt.hpp>
#include <cstddef>
#include <filesystem>
#include <vector>

#include "ckpt_catch.hpp"
#include "test_util.hpp"

namespace ckpt_test {

/// Writes `full` cut to every length 0 .. size-1 at `cut` and requires load(cut) to raise
/// format_error with cut's path and an offset no larger than the uncut size.
template <class Load>
void require_truncations_fail(const std::vector<char>& full, const std::filesystem::path& cut, Load&& load) {
  for (std::size_t n = 0; n < full.size(); ++n) {
    write_bytes(cut, std::vector<char>(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(n)));
    INFO("cut to " << n << " of " << full.size() << " bytes");
    try {
      (void)load(cut);
      FAIL("a truncated file loaded");
    } catch (const ckpt::format_error& e) {
      CHECK(e.path() == cut.string());
      REQUIRE(e.offset() != ckpt::format_error::no_offset);
      CHECK(e.offset() <= full.size());
    }
  }
}

}  // namespace ckpt_test
