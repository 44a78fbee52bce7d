// The .pt backend on what real projects' checkpoints hold beyond weights_only's set (issue 16),
// without Python: files put together by hand (tests/support/pt_file.hpp) with NumPy scalars
// and arrays (NumPy 1 and 2 module names, both byte orders, Fortran order, every dtype), sets,
// bytes, complex numbers, a whole nn.Linear, an argparse.Namespace and an os.system payload —
// read by default or with LoadOptions::inert_objects, refused where they must be (naming the
// key or the global), written back to .pt (objects that round-trip as themselves, the rest as
// plain dicts, listed), and nothing ever runs.
#include "ckpt_catch.hpp"
#include <ckpt/ckpt.hpp>
#include <ckpt/detail/unpickle.hpp>

#include <complex>
#include <cstring>

#include "pt_file.hpp"
#include "test_util.hpp"

using namespace ckpt;
using namespace pt_test;
using namespace std::literals;

namespace {
constexpr const char* cores[] = {"numpy.core.multiarray", "numpy._core.multiarray"};

template <class T>
std::string raw_of(T v, bool big_endian = false) {
  std::string r(sizeof v, '\0');
  std::memcpy(r.data(), &v, sizeof v);
  if (big_endian) std::reverse(r.begin(), r.end());
  return r;
}
template <class T>
std::string raw_of(const std::vector<T>& v, bool big_endian = false) {
  std::string r;
  for (const T& x : v) r += raw_of(x, big_endian);
  return r;
}
LoadOptions inert() {
  LoadOptions o;
  o.inert_objects = true;
  return o;
}
// The data.pkl of a .pt file ckpt wrote, as text (to look for globals in it).
std::string pickle_of(const std::filesystem::path& p) {
  detail::zip::Reader z(p);
  const auto b = z.read(*z.find("archive/data.pkl"));
  return std::string(reinterpret_cast<const char*>(b.data()), b.size());
}
}  // namespace

TEST_CASE("pt: NumPy scalars are JSON numbers, with NumPy 1 and 2 names and either byte order", "[formats][torch][numpy]") {
  ckpt_test::TempDir dir;
  const auto p = dir / "scalars.pt";
  for (const std::string core : cores) {
    INFO(core);
    PtFile f;
    f.write(p, dict_pickle([&](Pickler& pk) {
      pk.string("best_acc"), np_scalar(pk, core, "f8", "<", raw_of(0.71));
      pk.string("steps"), np_scalar(pk, core, "i8", "<", raw_of(std::int64_t{1234}));
      pk.string("flag"), np_scalar(pk, core, "b1", "|", "\x01"s);
      pk.string("f4_big"), np_scalar(pk, core, "f4", ">", raw_of(1.5f, true));
      pk.string("i2_big"), np_scalar(pk, core, "i2", ">", raw_of(std::int16_t{-2}, true));
      pk.string("u8_max"), np_scalar(pk, core, "u8", "<", raw_of(std::uint64_t{UINT64_MAX}));
      pk.string("u1"), np_scalar(pk, core, "u1", "|", "\xfe"s);
      pk.string("f2"), np_scalar(pk, core, "f2", "<", raw_of(std::uint16_t{0x3e00}));  // 1.5
      pk.string("c16"), np_scalar(pk, core, "c16", "<", raw_of(std::vector<double>{1.0, -2.5}));
      pk.string("c8_big"), np_scalar(pk, core, "c8", ">", raw_of(std::vector<float>{0.5f, 4.0f}, true));
      pk.string("str"), np_scalar(pk, core, "U3", "<", raw_of(std::vector<std::uint32_t>{'h', 0xe9, 0}));
      pk.string("bytes"), np_scalar(pk, core, "S4", "|", "ab\0\0"s);
    }));
    StateDict sd = load(p);
    CHECK(sd["best_acc"].value() == 0.71);
    CHECK(sd["best_acc"].value().is_number_float());
    CHECK(sd["steps"].value() == 1234);
    CHECK(sd["steps"].value().is_number_integer());
    CHECK(sd["flag"].value() == true);
    CHECK(sd["f4_big"].value() == 1.5);
    CHECK(sd["i2_big"].value() == -2);
    CHECK(sd["u8_max"].value().get<std::uint64_t>() == UINT64_MAX);
    CHECK(sd["u1"].value() == 254);
    CHECK(sd["f2"].value() == 1.5);
    CHECK(sd["c16"].value() == Value{{"$class", "builtins.complex"}, {"$args", {1.0, -2.5}}});
    CHECK(sd["c8_big"].value() == Value{{"$class", "builtins.complex"}, {"$args", {0.5, 4.0}}});
    CHECK(sd["str"].value() == "h\u00e9");
    CHECK(sd["bytes"].value() == Value{{"$class", "builtins.bytes"}, {"$base64", "YWI="}});
    // written to .pt they are plain Python numbers (which torch's weights_only loader takes)
    save(dir / "back.pt", sd);
    CHECK(load(dir / "back.pt") == sd);
    CHECK(pickle_of(dir / "back.pt").find("numpy") == std::string::npos);
  }
}

TEST_CASE("pt: NumPy arrays are tensors: every dtype, C and Fortran order, big-endian, 0-d, empty, shared", "[formats][torch][numpy]") {
  ckpt_test::TempDir dir;
  const auto p = dir / "arrays.pt";
  const std::vector<std::pair<std::string, DType>> codes = {
      {"b1", DType::boolean}, {"i1", DType::i8}, {"i2", DType::i16}, {"i4", DType::i32}, {"i8", DType::i64}, {"u1", DType::u8}, {"u2", DType::u16},
      {"u4", DType::u32}, {"u8", DType::u64}, {"f2", DType::f16}, {"f4", DType::f32}, {"f8", DType::f64}, {"c8", DType::c64}, {"c16", DType::c128}};
  std::map<std::string, Tensor> want;
  std::uint64_t seed = 7;
  for (const auto& [code, dt] : codes) want[code] = ckpt_test::random_tensor(dt, {2, 3}, seed++);
  auto raw = [](const Tensor& t) { return std::string(reinterpret_cast<const char*>(t.data()), t.nbytes()); };
  for (const std::string core : cores) {
    INFO(core);
    PtFile f;
    f.write(p, dict_pickle([&](Pickler& pk) {
      for (const auto& [code, dt] : codes) {
        pk.string(code);
        np_array(pk, core, code, code.size() == 2 && code[1] == '1' ? "|" : "<", {2, 3}, false, [&](Pickler& d) { py_bytes(d, raw(want[code])); });
      }
      pk.string("fortran");
      np_array(pk, core, "i2", "<", {2, 3}, true, [](Pickler& d) { py_bytes(d, raw_of(std::vector<std::int16_t>{0, 3, 1, 4, 2, 5})); });
      pk.string("big");
      np_array(pk, core, "f8", ">", {4}, false, [](Pickler& d) { py_bytes(d, raw_of(std::vector<double>{0, 1, 2, 3}, true)); });
      pk.string("big_fortran");
      np_array(pk, core, "i4", ">", {2, 2}, true, [](Pickler& d) { py_bytes(d, raw_of(std::vector<std::int32_t>{10, 30, 20, 40}, true)); });
      pk.string("scalar");
      np_array(pk, core, "i8", "<", {}, false, [](Pickler& d) { py_bytes(d, raw_of(std::int64_t{7})); });
      pk.string("empty");
      np_array(pk, core, "f4", "<", {0, 3}, false, [](Pickler& d) { py_bytes(d, ""); });
      pk.string("frombuffer");  // protocol 5's spelling: _frombuffer(buffer, dtype, shape, order)
      pk.global(core == cores[0] ? "numpy.core.numeric" : "numpy._core.numeric", "_frombuffer");
      pk.mark();
      py_bytes(pk, raw_of(std::vector<float>{1, 2, 3, 4}));
      np_dtype(pk, "f4", "<");
      int_tuple(pk, {2, 2});
      pk.string("F");
      pk.tuple_from_mark();
      pk.reduce();
    }));
    StateDict sd = load(p);
    for (const auto& [code, dt] : codes) {
      INFO(code);
      CHECK(sd[code].tensor() == want[code]);
    }
    CHECK(sd["fortran"].tensor() == Tensor::from<std::int16_t>({0, 1, 2, 3, 4, 5}, {2, 3}));
    CHECK(sd["big"].tensor() == Tensor::from<double>({0, 1, 2, 3}));
    CHECK(sd["big_fortran"].tensor() == Tensor::from<std::int32_t>({10, 20, 30, 40}, {2, 2}));
    CHECK(sd["scalar"].tensor() == Tensor::scalar(std::int64_t{7}));
    CHECK(sd["empty"].tensor().shape() == Shape{0, 3});
    CHECK(sd["frombuffer"].tensor() == Tensor::from<float>({1, 3, 2, 4}, {2, 2}));
    // through safetensors and back to .pt: the same tensors
    save(dir / "mid.safetensors", sd);
    save(dir / "back.pt", load(dir / "mid.safetensors"));
    CHECK(load(dir / "back.pt") == sd);
  }
  // one array referenced twice through the memo: two keys, one tensor (as tied weights)
  PtFile f;
  f.write(p, dict_pickle([](Pickler& pk) {
    pk.string("a");
    np_array(pk, cores[0], "f4", "<", {2}, false, [](Pickler& d) { py_bytes(d, raw_of(std::vector<float>{1, 2})); });
    const auto idx = pk.memoize();
    pk.string("b");
    pk.memo_get(idx);
  }));
  StateDict shared = load(p);
  CHECK(shared["a"].tensor() == Tensor::from<float>({1, 2}));
  CHECK(shared["b"].tensor().data() == shared["a"].tensor().data());
}

TEST_CASE("pt: NumPy values without a tensor or JSON value are refused, naming the key", "[formats][torch][numpy][bad]") {
  ckpt_test::TempDir dir;
  const auto p = dir / "bad.pt";
  PtFile f;
  auto with = [&](auto&& body) { f.write(p, dict_pickle(body)); };
  with([](Pickler& pk) {  // an object array: its "data" is a list of Python objects
    pk.string("obj");
    np_array(pk, cores[1], "O8", "|", {2}, false, [](Pickler& d) {
      d.empty_list();
      d.mark();
      d.integer(1);
      d.string("x");
      d.appends();
    });
  });
  for (const auto& opts : {LoadOptions{}, inert()}) {
    const auto msg = error_of<unsupported_error>(p, opts);
    CHECK_THAT(msg, ckpt_test::Contains("'obj'") && ckpt_test::Contains("'O8'") && ckpt_test::Contains("object"));
  }
  with([](Pickler& pk) {
    pk.string("when");
    np_array(pk, cores[0], "M8", "<", {1}, false, [](Pickler& d) { py_bytes(d, raw_of(std::int64_t{0})); });
  });
  CHECK_THAT(error_of<unsupported_error>(p), ckpt_test::Contains("'when'") && ckpt_test::Contains("'M8'"));
  with([](Pickler& pk) {
    pk.string("t");
    np_scalar(pk, cores[0], "M8", "<", raw_of(std::int64_t{0}));
  });
  CHECK_THAT(error_of<unsupported_error>(p), ckpt_test::Contains("'t'") && ckpt_test::Contains("no JSON value"));
  with([](Pickler& pk) {  // 3 bytes for two float32
    pk.string("short");
    np_array(pk, cores[0], "f4", "<", {2}, false, [](Pickler& d) { py_bytes(d, "abc"); });
  });
  CHECK_THAT(error_of<format_error>(p), ckpt_test::Contains("3 data bytes"));
  with([](Pickler& pk) {  // _reconstruct without BUILD
    pk.string("half");
    np_reconstruct(pk, cores[0]);
  });
  CHECK_THAT(error_of<format_error>(p), ckpt_test::Contains("'half'") && ckpt_test::Contains("without its state"));
  with([](Pickler& pk) {  // a wrong-size scalar
    pk.string("s");
    np_scalar(pk, cores[0], "f8", "<", "1234");
  });
  CHECK_THAT(error_of<format_error>(p), ckpt_test::Contains("with 4 bytes"));
}

TEST_CASE("pt: sets, frozensets, bytes, bytearrays, complex numbers, tuples and dtype globals, read and written back", "[formats][torch]") {
  ckpt_test::TempDir dir;
  const auto p = dir / "values.pt";
  PtFile f;
  f.records = {{"0", bytes_of(iota_f(2))}};
  f.write(p, dict_pickle([](Pickler& pk) {
    pk.string("w");
    tensor(pk, "FloatStorage", "0", 2, 0, {2}, {1});
    pk.string("tags");  // set(['a', 'b'])
    pk.global("__builtin__", "set");
    pk.empty_list();
    pk.mark();
    pk.string("a");
    pk.string("b");
    pk.appends();
    pk.tuple_n(1);
    pk.reduce();
    pk.string("frozen");
    pk.global("__builtin__", "frozenset");
    pk.empty_list();
    pk.tuple_n(1);
    pk.reduce();
    pk.string("raw");
    py_bytes(pk, "\x00\x01\xff"s);
    pk.string("none");  // b''
    pk.global("__builtin__", "bytes");
    pk.tuple_n(0);
    pk.reduce();
    pk.string("ba");
    pk.global("__builtin__", "bytearray");
    py_bytes(pk, "xy");
    pk.tuple_n(1);
    pk.reduce();
    pk.string("c");
    pk.global("__builtin__", "complex");
    pk.floating(1.0);
    pk.floating(-2.0);
    pk.tuple_n(2);
    pk.reduce();
    pk.string("t");
    pk.integer(1);
    pk.string("x");
    pk.tuple_n(2);
    pk.string("dtype");
    pk.global("torch", "bfloat16");
  }));
  StateDict sd = load(p);
  CHECK(sd["w"].tensor() == Tensor::from<float>({0, 1}));
  CHECK(sd["tags"].value() == Value::parse(R"({"$class": "builtins.set", "$items": ["a", "b"]})"));
  CHECK(sd["frozen"].value() == Value::parse(R"({"$class": "builtins.frozenset", "$items": []})"));
  CHECK(sd["raw"].value() == Value::parse(R"({"$class": "builtins.bytes", "$base64": "AAH/"})"));
  CHECK(sd["none"].value() == Value::parse(R"({"$class": "builtins.bytes", "$base64": ""})"));
  CHECK(sd["ba"].value() == Value::parse(R"({"$class": "builtins.bytearray", "$base64": "eHk="})"));
  CHECK(sd["c"].value() == Value::parse(R"({"$class": "builtins.complex", "$args": [1.0, -2.0]})"));
  CHECK(sd["t"].value() == Value::parse(R"([1, "x"])"));
  CHECK(sd["dtype"].value() == Value::parse(R"({"$global": "torch.bfloat16"})"));
  // written back as the same Python values (nothing dropped), also after a trip through safetensors
  for (const auto& via : {""s, ".safetensors"s}) {
    INFO(via);
    StateDict in = sd;
    if (!via.empty()) {
      save(dir / ("mid" + via), sd);
      in = load(dir / ("mid" + via));
    }
    torchfmt::OutputArchive ar(dir / "back.pt");
    write_state_dict(ar, in);  // (commits)
    CHECK(ar.dropped_objects().empty());
    CHECK(load(dir / "back.pt") == sd);
    const std::string pkl = pickle_of(dir / "back.pt");
    for (auto g : {"__builtin__\nset\n", "__builtin__\nfrozenset\n", "_codecs\nencode\n", "__builtin__\nbytes\n", "__builtin__\nbytearray\n", "__builtin__\ncomplex\n", "torch\nbfloat16\n"})
      CHECK(pkl.find(g) != std::string::npos);
  }
}

TEST_CASE("pt: Python objects are refused naming the global and the option, or read as inert records, nothing runs", "[formats][torch][security]") {
  ckpt_test::TempDir dir;
  const auto p = dir / "objects.pt", marker = dir / "ran";
  write_objects_file(p, marker);
  // refused by default: the first global weights_only does not allow, and how to read it anyway
  const auto msg = error_of<format_error>(p);
  CHECK_THAT(msg, ckpt_test::Contains("'torch.nn.modules.linear.Linear'") && ckpt_test::Contains("not allowed") &&
                      ckpt_test::Contains("--inert-objects") && ckpt_test::Contains("LoadOptions::inert_objects"));
  CHECK_FALSE(std::filesystem::exists(marker));
  // with LoadOptions::inert_objects: records, the module's tensors loaded, the payload a record
  StateDict sd = load(p, inert());
  CHECK_FALSE(std::filesystem::exists(marker));
  CHECK(sd["model"]["$class"].value() == "torch.nn.modules.linear.Linear");
  CHECK(sd.at(KeyPath{"model", "$state", "_parameters", "weight"}).tensor() == Tensor::from<float>({1.5f, -2.0f}, {1, 2}));
  CHECK(sd.at(KeyPath{"model", "$state", "_parameters", "bias"}).tensor() == Tensor::from<float>({0.25f}, {1}));
  CHECK(sd.at(KeyPath{"model", "$state", "in_features"}).value() == 2);
  CHECK(sd.at(KeyPath{"model", "$state", "_non_persistent_buffers_set"}).value() == Value::parse(R"({"$class": "builtins.set", "$items": []})"));
  CHECK(sd["args"].value() == Value::parse(R"({"$class": "argparse.Namespace", "$state": {"lr": 0.5, "name": "x"}})"));
  CHECK(sd["evil"].value() == Value{{"$class", "os.system"}, {"$args", {"touch " + marker.string()}}});
  CHECK(sd["step"].value() == 7);

  // written back to .pt: the Namespace as itself; the module and the payload as plain dicts,
  // listed — so the new file runs nothing even under torch.load(weights_only=False)
  for (const auto& via : {""s, ".safetensors"s, ".ckpt"s}) {
    INFO(via);
    StateDict in = sd;
    if (!via.empty()) {
      save(dir / ("mid" + via), sd);
      in = load(dir / ("mid" + via));
      CHECK(in == sd);
    }
    torchfmt::OutputArchive ar(dir / "back.pt");
    write_state_dict(ar, in);  // (commits)
    CHECK(ar.dropped_objects() == std::vector<std::string>{"model (torch.nn.modules.linear.Linear)", "evil (os.system)"});
    const std::string pkl = pickle_of(dir / "back.pt");
    CHECK(pkl.find("argparse\nNamespace\n") != std::string::npos);
    CHECK(pkl.find("os\nsystem\n") == std::string::npos);  // no such GLOBAL (the names are only strings now)
    CHECK(pkl.find("torch.nn.modules.linear\nLinear\n") == std::string::npos);
    CHECK(pkl.find("torch.nn.modules.linear.Linear") != std::string::npos);
    CHECK(load(dir / "back.pt", inert()) == sd);  // ckpt reads the same tree back
    CHECK_THAT(error_of<format_error>(dir / "back.pt"), ckpt_test::Contains("'argparse.Namespace'"));
  }
  CHECK_FALSE(std::filesystem::exists(marker));
}

TEST_CASE("pt: inert records of dict subclasses holding tensors, calls of torch globals, bare class references", "[formats][torch]") {
  ckpt_test::TempDir dir;
  const auto p = dir / "o.pt";
  PtFile f;
  f.records = {{"0", bytes_of(iota_f(3))}};
  f.write(p, dict_pickle([](Pickler& pk) {
    pk.string("hp");  // an AttributeDict-like dict subclass holding a tensor: NEWOBJ + SETITEMS + BUILD
    pk.global("lightning.fabric.utilities.data", "AttributeDict");
    pk.tuple_n(0);
    pk.newobj();
    pk.mark();
    pk.string("lr");
    pk.floating(0.1);
    pk.string("init");
    tensor(pk, "FloatStorage", "0", 3, 0, {3}, {1});
    pk.setitems();
    pk.empty_dict();
    pk.build();
    pk.string("device");  // torch.device('cpu'): a call of a global weights_only allows only since 2.x
    pk.global("torch", "device");
    pk.string("cpu");
    pk.tuple_n(1);
    pk.reduce();
    pk.string("act");  // a class referenced, not called
    pk.global("torch.nn.modules.activation", "ReLU");
  }));
  CHECK_THAT(error_of<format_error>(p), ckpt_test::Contains("'lightning.fabric.utilities.data.AttributeDict'"));
  StateDict sd = load(p, inert());
  CHECK(sd["hp"]["$class"].value() == "lightning.fabric.utilities.data.AttributeDict");
  CHECK(sd.at(KeyPath{"hp", "$items", "lr"}).value() == 0.1);
  CHECK(sd.at(KeyPath{"hp", "$items", "init"}).tensor() == Tensor::from<float>({0, 1, 2}));
  CHECK(sd.at(KeyPath{"hp", "$state"}).is_dict());  // an empty dict: a node
  CHECK(sd["device"].value() == Value::parse(R"({"$class": "torch.device", "$args": ["cpu"]})"));
  CHECK(sd["act"].value() == Value::parse(R"({"$global": "torch.nn.modules.activation.ReLU"})"));
}
