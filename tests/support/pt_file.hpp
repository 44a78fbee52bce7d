// Test helpers for the .pt backend without Python (never in include/): a torch.save zip put
// together by hand (PtFile: data.pkl, byteorder, storage records), the pickle of a tensor as
// torch.save writes it, of NumPy scalars and arrays, of Python objects (a whole nn.Linear, an
// argparse.Namespace, an os.system payload) as torch.save (protocol 2) writes them, and
// error_of<E>(file) — the message of the exception a load raises.
#pragma once

#include <ckpt/ckpt.hpp>
#include <ckpt/detail/pickle_write.hpp>
#include <ckpt/io/memory.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "ckpt_catch.hpp"
#include "test_util.hpp"

namespace pt_test {
using namespace ckpt;
using detail::pickle::Pickler;

inline std::vector<std::byte> B(std::string_view s) {
  const auto* p = reinterpret_cast<const std::byte*>(s.data());
  return {p, p + s.size()};
}
template <class T>
std::vector<std::byte> bytes_of(const std::vector<T>& v) {
  const auto* p = reinterpret_cast<const std::byte*>(v.data());
  return {p, p + v.size() * sizeof(T)};
}

// A torch.save zip put together by hand.
struct PtFile {
  std::string folder = "archive";
  std::optional<std::string> byteorder = "little";
  bool deflate = false;
  std::vector<std::pair<std::string, std::vector<std::byte>>> records;
  std::vector<std::pair<std::string, std::vector<std::byte>>> extra;  // more members, by full name

  void write(const std::filesystem::path& p, const std::vector<std::byte>& pkl) const {
    io::MemoryWriter mw;
    detail::zip::Writer z(mw);
    z.add(folder + "/data.pkl", pkl, deflate);
    if (byteorder) z.add(folder + "/byteorder", B(*byteorder));
    for (const auto& [k, b] : records) z.add(folder + "/data/" + k, b, deflate, 64);
    for (const auto& [k, b] : extra) z.add(k, b);
    z.add(folder + "/version", B("3\n"));
    z.finish();
    const auto& out = mw.bytes();
    ckpt_test::write_bytes(p, std::vector<char>(reinterpret_cast<const char*>(out.data()), reinterpret_cast<const char*>(out.data()) + out.size()));
  }
};

inline void int_tuple(Pickler& pk, const std::vector<std::int64_t>& v) {
  pk.mark();
  for (auto x : v) pk.integer(x);
  pk.tuple_from_mark();
}
// _rebuild_tensor_v2(('storage', torch.<cls>, key, 'cpu', numel), offset, size, stride, False, OrderedDict())
// or, with v3_dtype, _rebuild_tensor_v3(... UntypedStorage ..., torch.<v3_dtype>).
inline void tensor(Pickler& pk, std::string_view cls, const std::string& key, std::int64_t numel, std::int64_t offset,
            const std::vector<std::int64_t>& size, const std::vector<std::int64_t>& stride, std::string_view v3_dtype = {}) {
  pk.global("torch._utils", v3_dtype.empty() ? "_rebuild_tensor_v2" : "_rebuild_tensor_v3");
  pk.mark();
  pk.mark();
  pk.string("storage");
  if (v3_dtype.empty()) pk.global("torch", cls);
  else pk.global("torch.storage", "UntypedStorage");
  pk.string(key);
  pk.string("cpu");
  pk.integer(numel);
  pk.tuple_from_mark();
  pk.binpersid();
  pk.integer(offset);
  int_tuple(pk, size);
  int_tuple(pk, stride);
  pk.boolean(false);
  pk.global("collections", "OrderedDict");
  pk.tuple_n(0);
  pk.reduce();
  if (!v3_dtype.empty()) pk.global("torch", v3_dtype);
  pk.tuple_from_mark();
  pk.reduce();
}
// {"name": tensor, ...} built by `body` (which emits key/value pairs).
template <class F>
std::vector<std::byte> dict_pickle(F&& body) {
  Pickler pk;
  pk.empty_dict();
  pk.mark();
  body(pk);
  pk.setitems();
  return pk.finish();
}
inline std::vector<float> iota_f(std::size_t n) {
  std::vector<float> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<float>(i);
  return v;
}
template <class E>
std::string error_of(const std::filesystem::path& p, const LoadOptions& opts = {}) {
  try {
    (void)load(p, opts);
  } catch (const E& e) {
    return e.what();
  }
  FAIL("no exception of the expected type");
  return {};
}

// bytes as protocol 2 writes them: _codecs.encode(their latin-1 text, 'latin1')
inline void py_bytes(Pickler& pk, std::string_view raw) {
  std::string text;
  for (char c : raw) detail::pickle::append_utf8(text, static_cast<unsigned char>(c));
  pk.global("_codecs", "encode");
  pk.string(text);
  pk.string("latin1");
  pk.tuple_n(2);
  pk.reduce();
}
// numpy.dtype(code, False, True) + BUILD (3, order, None, None, None, -1, -1, 0)
inline void np_dtype(Pickler& pk, const std::string& code, const std::string& order) {
  pk.global("numpy", "dtype");
  pk.string(code);
  pk.boolean(false);
  pk.boolean(true);
  pk.tuple_n(3);
  pk.reduce();
  pk.mark();
  pk.integer(3);
  pk.string(order);
  pk.none();
  pk.none();
  pk.none();
  pk.integer(-1);
  pk.integer(-1);
  pk.integer(0);
  pk.tuple_from_mark();
  pk.build();
}
// <core>.scalar(dtype, bytes); core is "numpy.core.multiarray" (NumPy 1) or "numpy._core.multiarray" (2)
inline void np_scalar(Pickler& pk, const std::string& core, const std::string& code, const std::string& order, std::string_view raw) {
  pk.global(core, "scalar");
  np_dtype(pk, code, order);
  py_bytes(pk, raw);
  pk.tuple_n(2);
  pk.reduce();
}
// <core>._reconstruct(numpy.ndarray, (0,), b'b'): an empty array that BUILD fills in
inline void np_reconstruct(Pickler& pk, const std::string& core) {
  pk.global(core, "_reconstruct");
  pk.global("numpy", "ndarray");
  pk.integer(0);
  pk.tuple_n(1);
  py_bytes(pk, "b");
  pk.tuple_n(3);
  pk.reduce();
}
// np_reconstruct + BUILD (1, shape, dtype, is_fortran, bytes)
template <class Data>
void np_array(Pickler& pk, const std::string& core, const std::string& code, const std::string& order,
              const std::vector<std::int64_t>& shape, bool fortran, Data&& data) {
  np_reconstruct(pk, core);
  pk.mark();
  pk.integer(1);
  int_tuple(pk, shape);
  np_dtype(pk, code, order);
  pk.boolean(fortran);
  data(pk);  // the elements' bytes (py_bytes), or a list for an object array
  pk.tuple_from_mark();
  pk.build();
}
// An object of `cls` as protocol 2 pickles a plain class: NEWOBJ of cls with (), then BUILD
// with its __dict__, whose items `state` emits (key/value pairs).
template <class State>
void py_object(Pickler& pk, std::string_view module, std::string_view cls, State&& state) {
  pk.global(module, cls);
  pk.tuple_n(0);
  pk.newobj();
  pk.empty_dict();
  pk.mark();
  state(pk);
  pk.setitems();
  pk.build();
}
// torch.save(nn.Linear(2, 1)) as far as ckpt cares: the module pickled whole, its weight and
// bias tensors in the _parameters OrderedDict (storages "0": 2 floats, "1": 1 float).
inline void linear_module(Pickler& pk) {
  py_object(pk, "torch.nn.modules.linear", "Linear", [](Pickler& p) {
    p.string("training");
    p.boolean(true);
    p.string("_parameters");
    p.global("collections", "OrderedDict");
    p.tuple_n(0);
    p.reduce();
    p.mark();
    p.string("weight");
    tensor(p, "FloatStorage", "0", 2, 0, {1, 2}, {2, 1});
    p.string("bias");
    tensor(p, "FloatStorage", "1", 1, 0, {1}, {1});
    p.setitems();
    p.string("_buffers");
    p.global("collections", "OrderedDict");
    p.tuple_n(0);
    p.reduce();
    p.string("_non_persistent_buffers_set");
    p.global("__builtin__", "set");
    p.empty_list();
    p.tuple_n(1);
    p.reduce();
    p.string("in_features");
    p.integer(2);
    p.string("out_features");
    p.integer(1);
  });
}
// os.system(cmd) through REDUCE: the classic payload
inline void os_system(Pickler& pk, const std::string& cmd) {
  pk.global("os", "system");
  pk.string(cmd);
  pk.tuple_n(1);
  pk.reduce();
}
// {"model": nn.Linear pickled whole, "args": argparse.Namespace(lr=0.5, name="x"),
//  "evil": os.system("touch <marker>"), "step": 7}: a file weights_only refuses
inline void write_objects_file(const std::filesystem::path& p, const std::filesystem::path& marker) {
  PtFile f;
  f.records = {{"0", bytes_of(std::vector<float>{1.5f, -2.0f})}, {"1", bytes_of(std::vector<float>{0.25f})}};
  f.write(p, dict_pickle([&](Pickler& pk) {
    pk.string("model");
    linear_module(pk);
    pk.string("args");
    py_object(pk, "argparse", "Namespace", [](Pickler& s) {
      s.string("lr");
      s.floating(0.5);
      s.string("name");
      s.string("x");
    });
    pk.string("evil");
    os_system(pk, "touch " + marker.string());
    pk.string("step");
    pk.integer(7);
  }));
}
}  // namespace pt_test
