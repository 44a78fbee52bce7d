// The .pt backend without Python: round trips of every dtype and tree shape, what the written
// zip looks like (folder, protocol 2, 64-byte aligned storages, version, byteorder), tied
// weights, and hand-built torch.save files (built here with the zip writer and the pickler)
// for strided views, big-endian storages, deflated members, other folder names, v3 tensors —
// plus hostile and damaged files, each of which must raise the specific exception.
#include "ckpt_catch.hpp"
#include <ckpt/ckpt.hpp>
#include <ckpt/io/memory.hpp>

#include "pt_file.hpp"
#include "test_util.hpp"
#include "truncation.hpp"

using namespace ckpt;
using namespace std::literals;

namespace {
using namespace pt_test;

StateDict zoo() {
  StateDict sd;
  std::uint64_t seed = 1;
  for (DType t : all_dtypes) sd.set(std::string("t_") + std::string(name(t)), ckpt_test::random_tensor(t, {2, 3}, seed++));
  sd["scalar"] = Tensor::scalar(2.5);
  sd["empty"] = Tensor(DType::f32, {0, 4});
  sd["model.0.weight"] = ckpt_test::random_tensor(DType::f32, {3, 2}, 40);
  sd["model"].set("0.bias", ckpt_test::random_tensor(DType::f32, {3}, 41));  // a dotted key: flat
  StateDict state = StateDict::dict(Container::int_dict);
  state["0.step"] = Tensor::scalar(3.0f);
  state["0.exp_avg"] = ckpt_test::random_tensor(DType::f32, {3, 2}, 42);
  state["7.exp_avg"] = ckpt_test::random_tensor(DType::f32, {3}, 43);
  sd["optim"].set("state", state);
  sd["optim"].set("param_groups", Value::parse(R"([{"lr": 0.001, "betas": [0.9, 0.999], "params": [0, 7], "foreach": null, "amsgrad": false}])"));
  StateDict tensors = StateDict::dict(Container::list);
  tensors.set("0", Tensor::from<std::int64_t>({1, 2}));
  tensors.set("1", Tensor::from<float>({3}));
  sd.set("list_of_tensors", tensors);
  sd["epoch"] = 3;
  sd["loss"] = 0.12;
  sd["name"] = "r\u00e9sum\u00e9";
  sd["big"] = std::numeric_limits<std::uint64_t>::max();
  sd["neg"] = std::numeric_limits<std::int64_t>::min();
  sd["cfg"] = Value::parse(R"({"hidden": [64, 64], "act": "relu", "nested": {"a": [1.5, null, true]}})");
  sd.set("empty_dict", StateDict::dict());
  return sd;
}
}  // namespace

TEST_CASE("pt: a StateDict of every dtype and tree shape round-trips exactly", "[formats][torch]") {
  ckpt_test::TempDir dir;
  const StateDict sd = zoo();
  save(dir / "z.pt", sd);
  CHECK(sniff_format(dir / "z.pt") == "pt");
  CHECK(format_for_save(dir / "x.pth") == "pt");
  const StateDict back = load(dir / "z.pt");
  CHECK(back == sd);
  CHECK(back.at("optim.state").container() == Container::int_dict);
  CHECK(back.at("list_of_tensors").container() == Container::list);
  CHECK(back.at("optim.param_groups").is_value());
  CHECK(back.at(KeyPath{"model", "0.bias"}).is_tensor());
  CHECK(back.at("model.0.weight").is_tensor());  // nested {"0": {"weight"}} stays nested
  CHECK(back.at("big").get<std::uint64_t>() == std::numeric_limits<std::uint64_t>::max());
  // a file with one tensor at the root (torch.save(tensor))
  const Tensor t = ckpt_test::random_tensor(DType::bf16, {4}, 9);
  save(dir / "t.pt", StateDict(t));
  CHECK(load(dir / "t.pt") == StateDict(t));
}

TEST_CASE("pt: a dict node holding only values comes back as a JSON object value", "[formats][torch]") {
  ckpt_test::TempDir dir;
  StateDict sd;
  sd["meta.epoch"] = 3;  // a dict node "meta" with a value leaf
  sd["meta.name"] = "run";
  save(dir / "m.pt", sd);
  const StateDict back = load(dir / "m.pt");
  CHECK(back.at("meta").is_value());
  CHECK(back.at("meta").value() == Value{{"epoch", 3}, {"name", "run"}});
  save(dir / "n.pt", back);
  CHECK(load(dir / "n.pt") == back);  // and from there on it is stable
}

TEST_CASE("pt: flat module keys stay flat through .ckpt and .json and back", "[formats][torch]") {
  ckpt_test::TempDir dir;
  StateDict sd;
  sd.set("0.weight", ckpt_test::random_tensor(DType::f32, {3, 2}, 1));
  sd.set("encoder.layers.1.bias", ckpt_test::random_tensor(DType::f32, {3}, 2));
  sd.set("bn.num_batches_tracked", Tensor::scalar<std::int64_t>(5));
  save(dir / "a.pt", sd);
  save(dir / "b.ckpt", load(dir / "a.pt"));
  save(dir / "c.json", load(dir / "b.ckpt"));
  save(dir / "d.pt", load(dir / "c.json"));
  const StateDict back = load(dir / "d.pt");
  CHECK(back == sd);
  CHECK(back.keys() == std::vector<std::string>{"0.weight", "encoder.layers.1.bias", "bn.num_batches_tracked"});
}

TEST_CASE("pt: the written zip is laid out as torch.save writes it", "[formats][torch]") {
  ckpt_test::TempDir dir;
  save(dir / "z.pt", zoo());
  detail::zip::Reader z(dir / "z.pt");
  std::size_t storages = 0;
  for (const auto& e : z.entries()) {
    INFO(e.name);
    CHECK(e.name.starts_with("archive/"));
    CHECK(e.method == 0);
    if (e.name.starts_with("archive/data/")) {
      ++storages;
      CHECK(e.data_offset % 64 == 0);
    }
  }
  CHECK(storages == zoo().tensor_count());
  auto text = [&](const char* n) { const auto b = z.read(*z.find(n)); return std::string(reinterpret_cast<const char*>(b.data()), b.size()); };
  CHECK(text("archive/version") == "3\n");
  CHECK(text("archive/byteorder") == "little");
  const std::string pkl = text("archive/data.pkl");
  CHECK(pkl.substr(0, 2) == "\x80\x02"sv);
  CHECK(pkl.find("torch._utils\n_rebuild_tensor_v2\n") != std::string::npos);
  CHECK(pkl.find("torch\nBFloat16Storage\n") != std::string::npos);
  CHECK(pkl.find("torch._utils\n_rebuild_tensor_v3\n") != std::string::npos);  // u16/u32/u64/f8
  CHECK(pkl.find("torch\nfloat8_e4m3fn\n") != std::string::npos);
}

TEST_CASE("pt: tied tensors share one storage, zlib deflates storages", "[formats][torch]") {
  ckpt_test::TempDir dir;
  const Tensor w = ckpt_test::random_tensor(DType::f32, {8, 4}, 3);
  StateDict sd;
  sd.set("embed.weight", w);
  sd.set("head.weight", w);  // same bytes, same address: one storage as in torch
  sd.set("other", w.clone());  // equal bytes elsewhere: its own storage
  SaveOptions o;
  o.codec = "zlib";
  save(dir / "t.pt", sd, o);
  detail::zip::Reader z(dir / "t.pt");
  std::size_t storages = 0;
  for (const auto& e : z.entries())
    if (e.name.starts_with("archive/data/")) {
      ++storages;
      CHECK(e.method == 8);
    }
  CHECK(storages == 2);
  const StateDict back = load(dir / "t.pt");
  CHECK(back == sd);
  const auto* head = back.at(KeyPath{"head.weight"}).tensor().data();
  CHECK(back.at(KeyPath{"embed.weight"}).tensor().data() == head);  // still tied
  CHECK(back.at("other").tensor().data() != head);
  torchfmt::InputArchive ar(dir / "t.pt");
  CHECK(ar.entries()[0].codec == "deflate");
  o.codec = "lz4";
  CHECK_THROWS_AS(save(dir / "u.pt", sd, o), unsupported_error);
}

TEST_CASE("pt: strided views, transposes, storage offsets and shared storages", "[formats][torch]") {
  ckpt_test::TempDir dir;
  PtFile f;
  f.records = {{"0", bytes_of(iota_f(12))}, {"1", bytes_of(std::vector<double>{1.5, 2.5})}};
  const auto pkl = dict_pickle([](Pickler& pk) {
    auto t = [&](const char* name, std::int64_t off, std::vector<std::int64_t> size, std::vector<std::int64_t> stride) {
      pk.string(name);
      tensor(pk, "FloatStorage", "0", 12, off, size, stride);
    };
    t("full", 0, {3, 4}, {4, 1});
    t("transposed", 0, {4, 3}, {1, 4});
    t("slice", 5, {3}, {1});
    t("strided", 1, {2, 2}, {8, 2});
    t("scalar", 7, {}, {});
    t("empty", 12, {0, 4}, {4, 1});
    t("col", 2, {3, 1}, {4, 1});
    pk.string("double");
    tensor(pk, "DoubleStorage", "1", 2, 1, {1}, {1});
  });
  f.write(dir / "v.pt", pkl);
  const StateDict sd = load(dir / "v.pt");
  auto vals = [&](const char* k) { auto v = sd.at(KeyPath{k}).tensor().values<float>(); return std::vector<float>(v.begin(), v.end()); };
  CHECK(vals("full") == iota_f(12));
  CHECK(vals("transposed") == std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11});
  CHECK(sd.at(KeyPath{"transposed"}).tensor().shape() == Shape{4, 3});
  CHECK(vals("slice") == std::vector<float>{5, 6, 7});
  CHECK(vals("strided") == std::vector<float>{1, 3, 9, 11});
  CHECK(vals("scalar") == std::vector<float>{7});
  CHECK(sd.at(KeyPath{"scalar"}).tensor().shape().empty());
  CHECK(sd.at(KeyPath{"empty"}).tensor().shape() == Shape{0, 4});
  CHECK(vals("col") == std::vector<float>{2, 6, 10});
  CHECK(sd.at(KeyPath{"double"}).tensor().item<double>() == 2.5);
}

TEST_CASE("pt: big-endian storages, other folder names, deflated members, v3 tensors, parameters", "[formats][torch]") {
  ckpt_test::TempDir dir;
  PtFile f;
  f.folder = "my_model";
  f.byteorder = "big";
  f.deflate = true;
  f.records = {{"a", B("\x3f\x80\x00\x00\xc0\x00\x00\x00"sv)},               // f32 1, -2 big-endian
               {"b", B("\x01\x02\xff\xfe"sv)},                                // i16 258, -2
               {"c", B("\x3f\x80\x00\x00\x40\x00\x00\x00"sv)},               // c64 (1 + 2i)
               {"d", B("\x00\x05\x01\x00"sv)}};                              // u16 via v3: 5, 256
  const auto pkl = dict_pickle([](Pickler& pk) {
    pk.string("f");
    tensor(pk, "FloatStorage", "a", 2, 0, {2}, {1});
    pk.string("i");
    tensor(pk, "ShortStorage", "b", 2, 0, {2}, {1});
    pk.string("c");
    tensor(pk, "ComplexFloatStorage", "c", 1, 0, {}, {});
    pk.string("u");
    tensor(pk, "", "d", 4, 0, {2}, {1}, "uint16");
    pk.string("param");  // torch._utils._rebuild_parameter(tensor, True, OrderedDict())
    pk.global("torch._utils", "_rebuild_parameter");
    tensor(pk, "FloatStorage", "a", 2, 1, {1}, {1});
    pk.boolean(true);
    pk.global("collections", "OrderedDict");
    pk.tuple_n(0);
    pk.reduce();
    pk.tuple_n(3);
    pk.reduce();
  });
  f.write(dir / "w.bin", pkl);
  CHECK(sniff_format(dir / "w.bin") == "pt");
  const StateDict sd = load(dir / "w.bin");
  CHECK(sd.at("f").tensor().values<float>()[1] == -2.0f);
  CHECK(sd.at("i").tensor().values<std::int16_t>()[0] == 258);
  CHECK(sd.at("i").tensor().values<std::int16_t>()[1] == -2);
  CHECK(sd.at("c").tensor().item<std::complex<float>>() == std::complex<float>(1, 2));
  CHECK(sd.at("u").tensor().values<std::uint16_t>()[1] == 256);
  CHECK(sd.at("param").tensor().item<float>() == -2.0f);
}

TEST_CASE("pt: Python containers map to nodes and values, and write back as the same types", "[formats][torch]") {
  ckpt_test::TempDir dir;
  PtFile f;
  f.records = {{"0", bytes_of(iota_f(2))}};
  // {'state': {0: {'m': t}, 3: {}}, 'groups': [{'betas': (0.9, 0.999), 'params': [0, 3]}],
  //  'pair': (t, 1), 'cfg': {'ints': {1: 'a', 2: 'b'}, 'none': None}}
  Pickler pk;
  pk.empty_dict();
  pk.mark();
  pk.string("state");
  pk.empty_dict();
  pk.mark();
  pk.integer(0);
  pk.empty_dict();
  pk.mark();
  pk.string("m");
  tensor(pk, "FloatStorage", "0", 2, 0, {2}, {1});
  pk.setitems();
  pk.integer(3);
  pk.empty_dict();
  pk.setitems();
  pk.string("groups");
  pk.empty_list();
  pk.mark();
  pk.value(Value::parse(R"({"params": [0, 3]})"));
  pk.appends();
  pk.string("pair");
  tensor(pk, "FloatStorage", "0", 2, 1, {}, {});
  pk.integer(1);
  pk.tuple_n(2);
  pk.string("cfg");
  pk.empty_dict();
  pk.mark();
  pk.string("ints");
  pk.empty_dict();
  pk.mark();
  pk.integer(1);
  pk.string("a");
  pk.integer(2);
  pk.string("b");
  pk.setitems();
  pk.string("betas");
  pk.floating(0.9);
  pk.floating(0.999);
  pk.tuple_n(2);
  pk.setitems();
  pk.setitems();
  f.write(dir / "c.pt", pk.finish());
  const StateDict sd = load(dir / "c.pt");
  CHECK(sd.at("state").container() == Container::int_dict);
  CHECK(sd.at("state").keys() == std::vector<std::string>{"0", "3"});
  CHECK(sd.at("state.3").is_dict());
  CHECK(sd.at("groups").value() == Value::parse(R"([{"params": [0, 3]}])"));  // no tensor inside: a JSON value
  CHECK(sd.at("pair").container() == Container::list);
  CHECK(sd.at("pair.0").tensor().item<float>() == 1.0f);
  CHECK(sd.at("pair.1").value() == 1);
  CHECK(sd.at("cfg.ints").container() == Container::int_dict);
  CHECK(sd.at("cfg.ints.2").value() == "b");
  CHECK(sd.at("cfg.betas").value() == Value::array({0.9, 0.999}));  // a tuple comes back as a list
  // written back: int keys are ints again
  save(dir / "d.pt", sd);
  CHECK(load(dir / "d.pt") == sd);
  detail::zip::Reader z(dir / "d.pt");
  const auto pkl = z.read(*z.find("archive/data.pkl"));
  detail::torch_pickle::Hooks hooks;
  detail::pickle::Unpickler u(pkl, "d", hooks);
  const auto* root = u.load();
  const auto* state = root->items[1];
  REQUIRE(state->dict_size() == 2);
  CHECK(state->items[0]->type == detail::pickle::Object::Type::integer);
  CHECK(state->items[2]->i == 3);
}

TEST_CASE("pt: expand()ed views (stride 0) are materialized, as torch.load reads them", "[formats][torch]") {
  ckpt_test::TempDir dir;
  const auto p = dir / "expanded.pt";
  PtFile f;
  f.records = {{"0", bytes_of(iota_f(4))}};
  f.write(p, dict_pickle([](Pickler& pk) {
    pk.string("row");  // torch.arange(4.)[1:3].expand(3, 2)
    tensor(pk, "FloatStorage", "0", 4, 1, {3, 2}, {0, 1});
    pk.string("fill");  // torch.tensor(3.).expand(1000)
    tensor(pk, "FloatStorage", "0", 4, 3, {1000}, {0});
  }));
  const StateDict sd = load(p);
  CHECK(sd.at("row").tensor() == Tensor::from<float>({1, 2, 1, 2, 1, 2}, {3, 2}));
  CHECK(sd.at("fill").tensor() == Tensor::from<float>(std::vector<float>(1000, 3.0f)));
  // up to the bound the file justifies, and no further
  const std::uint64_t size = std::filesystem::file_size(p);
  f.write(p, dict_pickle([&](Pickler& pk) {
    pk.string("big");
    tensor(pk, "FloatStorage", "0", 4, 0, {static_cast<std::int64_t>(torchfmt::max_expanded_bytes(size) / 4 + 64)}, {0});
  }));
  CHECK_THROWS_AS(load(p), format_error);
}

TEST_CASE("pt: hostile and damaged files raise the specific error", "[formats][torch][bad]") {
  ckpt_test::TempDir dir;
  const auto p = dir / "bad.pt";
  PtFile f;
  f.records = {{"0", bytes_of(iota_f(4))}};
  auto with = [&](auto&& body) { f.write(p, dict_pickle(body)); };
  auto t4 = [](Pickler& pk, std::int64_t off, std::vector<std::int64_t> size, std::vector<std::int64_t> stride) {
    pk.string("x");
    tensor(pk, "FloatStorage", "0", 4, off, size, stride);
  };

  // os.system __reduce__ inside data.pkl: refused at the GLOBAL, naming it
  with([](Pickler& pk) {
    pk.string("x");
    pk.global("os", "system");
    pk.string("touch /tmp/ckpt-evil-pt");
    pk.tuple_n(1);
    pk.reduce();
  });
  CHECK_THAT(error_of<format_error>(p), ckpt_test::Contains("'os.system'") && ckpt_test::Contains("not allowed"));
  CHECK_FALSE(std::filesystem::exists("/tmp/ckpt-evil-pt"));
  // views outside their storage, overflowing strides, expand()-style overlap
  with([&](Pickler& pk) { t4(pk, 2, {3}, {1}); });
  CHECK_THAT(error_of<format_error>(p), ckpt_test::Contains("past the end of its storage") && ckpt_test::Contains("'x'"));
  with([&](Pickler& pk) { t4(pk, 0, {2, 2}, {INT64_MAX, 1}); });
  CHECK_THROWS_AS(load(p), format_error);
  with([&](Pickler& pk) { t4(pk, 0, {std::int64_t{1} << 40}, {0}); });  // 4 TiB from stride 0
  CHECK_THAT(error_of<format_error>(p), ckpt_test::Contains("more bytes than the file can justify") && ckpt_test::Contains("'x'"));
  with([&](Pickler& pk) { t4(pk, 5, {0}, {1}); });
  CHECK_THROWS_AS(load(p), format_error);
  // storage record missing, or of another size than declared
  with([](Pickler& pk) { pk.string("x"); tensor(pk, "FloatStorage", "9", 4, 0, {4}, {1}); });
  CHECK_THAT(error_of<format_error>(p), ckpt_test::Contains("storage record missing"));
  with([](Pickler& pk) { pk.string("x"); tensor(pk, "FloatStorage", "0", 5, 0, {4}, {1}); });
  CHECK_THAT(error_of<format_error>(p), ckpt_test::Contains("size differs"));
  // values the StateDict cannot hold
  with([](Pickler& pk) { pk.string("x"); pk.empty_dict(); pk.mark(); pk.integer(1); pk.none(); pk.string("a"); pk.none(); pk.setitems(); });
  CHECK_THAT(error_of<unsupported_error>(p), ckpt_test::Contains("mixes int and str keys") && ckpt_test::Contains("'x'"));
  with([](Pickler& pk) { pk.string("x"); pk.empty_dict(); pk.none(); pk.none(); pk.mark(); pk.setitems(); });
  CHECK_THROWS_AS(load(p), format_error);  // SETITEMS onto None
  // (bytes values and bare globals such as torch.float32 are read since issue 16: test_torch_objects.cpp)
  with([](Pickler& pk) { pk.string("x"); pk.global("torch", "FloatStorage"); pk.tuple_n(0); pk.reduce(); });
  CHECK_THAT(error_of<format_error>(p), ckpt_test::Contains("cannot be called"));
  // a list of 16 references to a list of 16 references ... expands past the value budget
  {  // billion laughs: 8 levels of lists holding 16 references to the level below (16^8 values)
    std::string s = "\x80\x02}X\x01\x00\x00\x00" "x]q\x00(K\x01K\x02" "e0"s;
    for (int level = 1; level <= 8; ++level) {
      s += "](";
      for (int k = 0; k < 16; ++k) s += "h" + std::string(1, static_cast<char>(level - 1));
      s += "eq" + std::string(1, static_cast<char>(level)) + "0";
    }
    s += "h\x08s."s;
    f.write(p, B(s));
    CHECK_THAT(error_of<format_error>(p), ckpt_test::Contains("expands to more than"));
  }
  f.write(p, B("\x80\x02}X\x01\x00\x00\x00x]q\x00h\x00\x61s."sv));  // a list that contains itself
  CHECK_THAT(error_of<format_error>(p), ckpt_test::Contains("nested deeper than"));
  // container-level damage
  PtFile g = f;
  g.byteorder = "middle";
  g.write(p, dict_pickle([](Pickler&) {}));
  CHECK_THAT(error_of<format_error>(p), ckpt_test::Contains("byteorder"));
  g = f;
  g.extra = {{"other/data.pkl", B("\x80\x02}.")}};
  g.write(p, dict_pickle([](Pickler&) {}));
  CHECK_THAT(error_of<format_error>(p), ckpt_test::Contains("more than one data.pkl"));
  g = f;
  g.extra = {{"archive/constants.pkl", B("\x80\x02).")}};
  g.write(p, dict_pickle([](Pickler&) {}));
  CHECK_THAT(error_of<unsupported_error>(p), ckpt_test::Contains("TorchScript"));
  {  // an .npz-like zip is neither sniffed as pt nor readable as one
    io::MemoryWriter mw;
    detail::zip::Writer z(mw);
    z.add("w.npy", B("\x93NUMPY"));
    z.finish();
    ckpt_test::write_bytes(p, std::vector<char>(reinterpret_cast<const char*>(mw.bytes().data()), reinterpret_cast<const char*>(mw.bytes().data()) + mw.bytes().size()));
    std::array<std::byte, 256> head{};
    const auto b = ckpt_test::read_bytes(p);
    std::memcpy(head.data(), b.data(), std::min(b.size(), head.size()));
    CHECK_FALSE(archive_traits<torch_format>::sniff({head.data(), std::min(b.size(), head.size())}));
    CHECK_THROWS_AS(load_as<torch_format>(p), format_error);
  }
  ckpt_test::write_bytes(p, {'a', 'b', 'c'});
  CHECK_THROWS_AS(load_as<torch_format>(p), format_error);
}

TEST_CASE("pt: a flipped storage byte is a corrupt_error, truncation at every length is a format_error with the offset", "[formats][torch][bad]") {
  ckpt_test::TempDir dir;
  StateDict sd;
  sd["w"] = ckpt_test::random_tensor(DType::f32, {4, 4}, 5);
  sd["n"] = 1;
  save(dir / "a.pt", sd);
  auto b = ckpt_test::read_bytes(dir / "a.pt");
  detail::zip::Reader z(dir / "a.pt");
  const auto off = z.find("archive/data/0")->data_offset;
  b[off + 3] ^= 0x40;
  ckpt_test::write_bytes(dir / "c.pt", b);
  CHECK_THROWS_AS(load(dir / "c.pt"), corrupt_error);
  LoadOptions no_verify;
  no_verify.verify = false;
  CHECK_NOTHROW(load(dir / "c.pt", no_verify));
  b[off + 3] ^= 0x40;
  ckpt_test::require_truncations_fail(b, dir / "t.pt", [](const auto& q) { return load_as<torch_format>(q); });
}

TEST_CASE("pt: writing refuses keys torch cannot represent", "[formats][torch][bad]") {
  ckpt_test::TempDir dir;
  StateDict a = StateDict::dict(Container::int_dict);
  a["x"] = 1;
  StateDict sd;
  sd.set("state", a);
  CHECK_THROWS_AS(save(dir / "a.pt", sd), unsupported_error);
  StateDict l = StateDict::dict(Container::list);
  l["1"] = 1;
  sd.set("state", l);
  CHECK_THROWS_AS(save(dir / "a.pt", sd), unsupported_error);
  CHECK_FALSE(std::filesystem::exists(dir / "a.pt"));  // atomic: nothing left behind
  CHECK(dir.list().empty());
}
