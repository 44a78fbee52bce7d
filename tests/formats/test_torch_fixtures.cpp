// Real torch.save files from ../shared/fixtures (torch 2.x zip files of both generations and
// pre-1.6 legacy files), each compared with the values torch itself reads from it
// (NAME.expected.npz / NAME.expected.json), then written back by ckpt and read again.
// Registered only when the fixtures folder exists (tests/torch.cmake).
#include "ckpt_catch.hpp"
#include <ckpt/ckpt.hpp>

#include "test_util.hpp"
#include "torch_expected.hpp"

#ifndef CKPT_FIXTURES_DIR
#error "CKPT_FIXTURES_DIR must name ../shared/fixtures"
#endif

using namespace ckpt;
namespace fs = std::filesystem;

namespace {
std::vector<fs::path> pt_files(const char* sub) {
  std::vector<fs::path> v;
  for (const auto& e : fs::directory_iterator(fs::path(CKPT_FIXTURES_DIR) / sub))
    if (e.path().extension() == ".pt" && e.path().stem() != "broken") v.push_back(e.path());
  std::sort(v.begin(), v.end());
  return v;
}
void check_dir(const char* sub, bool legacy, std::size_t at_least) {
  ckpt_test::TempDir dir;
  const auto files = pt_files(sub);
  CHECK(files.size() >= at_least);
  for (const auto& f : files) {
    INFO(f.string());
    CHECK(sniff_format(f) == "pt");
    torchfmt::InputArchive ar(f);
    CHECK(ar.legacy() == legacy);
    const StateDict sd = load(f);
    const auto base = f.parent_path() / f.stem();
    const auto diffs = torch_expected::compare(sd, base.string() + ".expected.npz", base.string() + ".expected.json");
    for (const auto& d : diffs) FAIL_CHECK(d);
    CHECK(diffs.empty());
    // and what ckpt writes from it reads back the same
    const auto out = dir / f.filename().string();
    save(out, sd);
    CHECK(load(out) == sd);
  }
}
}  // namespace

TEST_CASE("fixtures: torch 2.x files read as torch reads them", "[formats][torch][fixtures]") {
  check_dir("torch2", false, 30);
}

TEST_CASE("fixtures: legacy (pre-1.6) torch files read as torch reads them", "[formats][torch][fixtures]") {
  check_dir("torch-legacy", true, 4);
  const auto broken = fs::path(CKPT_FIXTURES_DIR) / "torch-legacy" / "broken.pt";
  CHECK_THROWS_AS(load(broken), format_error);
  CHECK_THROWS_AS(load_as<torch_format>(broken), format_error);
}
