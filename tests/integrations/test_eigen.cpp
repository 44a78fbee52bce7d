// <ckpt/integrations/eigen.hpp>: Eigen matrices, arrays and maps as tensors — logical shape and
// row-major values for both storage orders, zero-copy where the storage allows, round trips of
// every scalar type through every backend, loading into Maps in place, and shape errors.
#include "ckpt_catch.hpp"
#include <ckpt/ckpt.hpp>
#include <ckpt/integrations/eigen.hpp>

#include <Eigen/Core>
#include <complex>
#include <cstring>
#include <tuple>

#include "test_util.hpp"

using namespace ckpt;
using Eigen::Dynamic;
using Eigen::RowMajor;

namespace {

/// A value of scalar type S, different for each k (bools alternate, floats are exact in f8 too).
template <class S>
S value_at(int k) {
  if constexpr (std::is_same_v<S, bool>) return k % 3 == 0;
  else if constexpr (std::is_same_v<S, float8_e4m3> || std::is_same_v<S, float8_e5m2>) return S::from_bits(static_cast<std::uint8_t>((k * 5 + 1) & 0x3f));
  else if constexpr (std::is_arithmetic_v<S>) return static_cast<S>(k * 3 + 1);
  else if constexpr (std::is_same_v<S, std::complex<float>> || std::is_same_v<S, std::complex<double>>) return S(k + 0.5, -k);
  else return S(static_cast<float>(k) * 0.5f - 3.0f);  // float16, bfloat16, Eigen::half, Eigen::bfloat16
}

/// x(i, j) = value_at(seed + row-major index).
template <class X>
void fill(X& x, int seed) {
  for (Eigen::Index i = 0; i < x.rows(); ++i)
    for (Eigen::Index j = 0; j < x.cols(); ++j) x(i, j) = value_at<typename X::Scalar>(seed + static_cast<int>(i * x.cols() + j));
}

/// Same dimensions and, coefficient by coefficient, the same bytes.
template <class A, class B>
bool same(const A& a, const B& b) {
  if (a.rows() != b.rows() || a.cols() != b.cols()) return false;
  for (Eigen::Index i = 0; i < a.rows(); ++i)
    for (Eigen::Index j = 0; j < a.cols(); ++j)
      if (std::memcmp(&a(i, j), &b(i, j), sizeof(typename A::Scalar)) != 0) return false;
  return true;
}

/// Does tensor t hold x's shape `want` and, in row-major order, x's coefficients?
template <class X>
bool holds_row_major(const Tensor& t, const X& x, const Shape& want) {
  using S = typename X::Scalar;
  if (t.shape() != want || t.dtype() != detail::eigen::dtype_v<X> || t.nbytes() != static_cast<std::size_t>(x.size()) * sizeof(S)) return false;
  for (Eigen::Index i = 0; i < x.rows(); ++i)
    for (Eigen::Index j = 0; j < x.cols(); ++j)
      if (std::memcmp(t.data() + (i * x.cols() + j) * static_cast<Eigen::Index>(sizeof(S)), &x(i, j), sizeof(S)) != 0) return false;
  return true;
}

/// Every layout of one scalar type: both storage orders, fixed, dynamic, mixed, bounded, vectors, arrays.
template <class S>
struct Layouts {
  Eigen::Matrix<S, Dynamic, Dynamic> col;
  Eigen::Matrix<S, Dynamic, Dynamic, RowMajor> row;
  Eigen::Matrix<S, 3, 4> fixed_col;
  Eigen::Matrix<S, 3, 4, RowMajor> fixed_row;
  Eigen::Matrix<S, 3, Dynamic> mixed;
  Eigen::Matrix<S, Dynamic, Dynamic, 0, 4, 4> bounded;
  Eigen::Matrix<S, Dynamic, 1> vec;
  Eigen::Matrix<S, 1, Dynamic> rowvec;
  Eigen::Matrix<S, 3, 1> fixed_vec;
  Eigen::Array<S, Dynamic, Dynamic> arr;
  Eigen::Array<S, 2, 5, RowMajor> arr_fixed_row;

  /// f(name, s.member...) for each member, over one or more Layouts at once.
  template <class F, class... Self>
  static void fields(F&& f, Self&... s) {
    f("col", s.col...), f("row", s.row...), f("fixed_col", s.fixed_col...), f("fixed_row", s.fixed_row...), f("mixed", s.mixed...),
        f("bounded", s.bounded...), f("vec", s.vec...), f("rowvec", s.rowvec...), f("fixed_vec", s.fixed_vec...), f("arr", s.arr...),
        f("arr_fixed_row", s.arr_fixed_row...);
  }
  /// seed >= 0: dynamic members get distinct sizes and every member values from `seed`;
  /// seed < 0: dynamic members stay empty, fixed ones hold other values.
  explicit Layouts(int seed) {
    if (seed >= 0) {
      col.resize(2, 3), row.resize(3, 2), mixed.resize(3, 2), bounded.resize(3, 4), vec.resize(5), rowvec.resize(4), arr.resize(2, 4);
    }
    int k = seed >= 0 ? seed : 200;
    fields([&](const char*, auto& x) { fill(x, k += 20); }, *this);
  }
  StateDict state_dict() const {
    StateDict sd;
    fields([&](const char* n, const auto& x) { sd.set(n, to_state_dict(x)); }, *this);
    return sd;
  }
  LoadReport load_state_dict(const StateDict& sd, const LoadOptions& o) {
    LoadReport r;
    fields([&](const char* n, auto& x) { load_child(sd, n, x, o, r); }, *this);
    return r;
  }
  bool operator==(const Layouts& o) const {
    bool eq = true;
    fields([&](const char*, const auto& x, const auto& y) { eq = eq && same(x, y); }, *this, o);
    return eq;
  }
};

/// Layouts of every scalar type ckpt has a dtype for, plus Eigen's own half and bfloat16.
using Scalars = std::tuple<double, float, float16, bfloat16, float8_e4m3, float8_e5m2, std::int8_t, std::int16_t, std::int32_t, std::int64_t,
                           std::uint8_t, std::uint16_t, std::uint32_t, std::uint64_t, bool, std::complex<float>, std::complex<double>,
                           Eigen::half, Eigen::bfloat16>;
template <class T>
struct ZooOf;
template <class... S>
struct ZooOf<std::tuple<S...>> {
  std::tuple<Layouts<S>...> layouts;
  explicit ZooOf(int seed) : layouts(Layouts<S>(seed)...) {}
  template <class F>
  void each(F&& f) const { std::apply([&](const auto&... l) { int i = 0; (f(i++, l), ...); }, layouts); }
  template <class F>
  void each(F&& f) { std::apply([&](auto&... l) { int i = 0; (f(i++, l), ...); }, layouts); }
  static std::string key(int i) { return "t" + std::to_string(i); }
  bool operator==(const ZooOf& o) const { return layouts == o.layouts; }
  StateDict state_dict() const {
    StateDict sd;
    each([&](int i, const auto& l) { sd.set(key(i), to_state_dict(l)); });
    return sd;
  }
  LoadReport load_state_dict(const StateDict& sd, const LoadOptions& o) {
    LoadReport r;
    each([&](int i, auto& l) { load_child(sd, key(i), l, o, r); });
    return r;
  }
};
using Zoo = ZooOf<Scalars>;

}  // namespace

TEST_CASE("eigen: shape and row-major values as NumPy sees them, zero-copy where the storage allows", "[eigen]") {
  Layouts<double> l(0);
  auto check = [](const auto& x, Shape want, bool zero_copy) {
    INFO("shape " << shape_string(want));
    StateDict sd = to_state_dict(x);
    REQUIRE(sd.is_tensor());
    CHECK(holds_row_major(sd.tensor(), x, want));
    CHECK((sd.tensor().data() == reinterpret_cast<const std::byte*>(x.data())) == zero_copy);
  };
  check(l.col, {2, 3}, false);  // column-major: a transposed copy
  check(l.row, {3, 2}, true);
  check(l.fixed_col, {3, 4}, false);
  check(l.fixed_row, {3, 4}, true);
  check(l.mixed, {3, 2}, false);
  check(l.bounded, {3, 4}, false);
  check(l.vec, {5}, true);  // vectors: one dimension, either orientation, no copy
  check(l.rowvec, {4}, true);
  check(l.fixed_vec, {3}, true);
  check(l.arr, {2, 4}, false);
  check(l.arr_fixed_row, {2, 5}, true);
  // The same through tensor_traits directly: row-major views, column-major copies.
  STATIC_REQUIRE(TensorLike<Eigen::MatrixXf>);
  STATIC_REQUIRE(TensorLike<Eigen::Map<const Eigen::MatrixXf>>);
  STATIC_REQUIRE(std::is_same_v<decltype(tensor_traits<Eigen::Matrix<float, 2, 2, RowMajor>>::view(std::declval<const Eigen::Matrix<float, 2, 2, RowMajor>&>())), TensorView>);
  CHECK(as_view(l.row).data == reinterpret_cast<const std::byte*>(l.row.data()));
  Eigen::Matrix2d m;
  m << 1, 2, 3, 4;  // m(0, 1) == 2: row-major bytes are 1 2 3 4, Eigen's own memory 1 3 2 4
  CHECK(tensor_of(m).values<double>()[1] == 2.0);
  CHECK(m.data()[1] == 3.0);
}

namespace {
/// What a file holds: the logical shape and row-major values (checked without Eigen's help).
void check_stored(const Zoo& saved, const StateDict& stored) {
  saved.each([&](int i, const auto& l) {
    INFO("scalar " << i);
    const std::string k = Zoo::key(i) + ".";
    CHECK(holds_row_major(stored.at(k + "col").tensor(), l.col, {2, 3}));
    CHECK(holds_row_major(stored.at(k + "fixed_col").tensor(), l.fixed_col, {3, 4}));
    CHECK(holds_row_major(stored.at(k + "rowvec").tensor(), l.rowvec, {4}));
    CHECK(holds_row_major(stored.at(k + "arr").tensor(), l.arr, {2, 4}));
  });
}
/// Loading resizes the dynamic members and fills the fixed ones.
void check_loads(const Zoo& saved, const StateDict& stored) {
  Zoo back(-1);
  REQUIRE_FALSE(back == saved);
  load_state_dict(back, stored);
  CHECK(back == saved);
}
}  // namespace

template <class F>
void check_eigen_round_trip(const std::filesystem::path& p) {
  const Zoo saved(1);
  save_as<F>(p, saved);
  const StateDict stored = load_as<F>(p);
  check_stored(saved, stored);
  check_loads(saved, stored);
  if constexpr (archive_traits<F>::caps.zero_copy_read) {
    LoadOptions o;
    o.mmap = true;
    check_loads(saved, load_as<F>(p, o));
  }
}

TEMPLATE_TEST_CASE("eigen: every scalar type and layout round-trips through every backend", "[eigen][formats]", native_format, json_format,
                   memory_format, npz_format, safetensors_format, safetensors_sharded_format, torch_format) {
  ckpt_test::TempDir dir;
  const auto& ext = archive_traits<TestType>::extensions;
  check_eigen_round_trip<TestType>(dir / ("eigen-" + std::string(archive_traits<TestType>::name) + std::string(ext.empty() ? "" : ext[0])));
}

TEST_CASE("eigen: empty matrices keep their shape", "[eigen][formats]") {
  ckpt_test::TempDir dir;
  const Eigen::MatrixXd empty(0, 3);
  const Eigen::Matrix<float, Dynamic, Dynamic, RowMajor> empty_row(2, 0);
  const Eigen::VectorXi none;
  StateDict sd;
  sd.set("empty", to_state_dict(empty));
  sd.set("empty_row", to_state_dict(empty_row));
  sd.set("none", to_state_dict(none));
  save(dir / "e.ckpt", sd);
  const StateDict back = load(dir / "e.ckpt");
  CHECK(back.at("empty").tensor().shape() == Shape{0, 3});
  CHECK(back.at("empty_row").tensor().shape() == Shape{2, 0});
  CHECK(back.at("none").tensor().shape() == Shape{0});
  Eigen::MatrixXd m = Eigen::MatrixXd::Ones(2, 2);
  load_state_dict(m, back.at("empty"));
  CHECK((m.rows() == 0 && m.cols() == 3));
}

TEST_CASE("eigen: one matrix as a whole .npy file", "[eigen][formats]") {
  ckpt_test::TempDir dir;
  Eigen::Matrix<std::int32_t, 4, 3> m;
  fill(m, 7);
  save(dir / "m.npy", m);
  const StateDict sd = load(dir / "m.npy");
  CHECK(holds_row_major(sd.tensor(), m, {4, 3}));
  Eigen::Matrix<std::int32_t, Dynamic, Dynamic, RowMajor> back;
  load_into(dir / "m.npy", back);
  CHECK(same(back, m));
}

TEST_CASE("eigen: Map saves without a copy and loads in place", "[eigen][map]") {
  std::vector<double> buf(12);
  SECTION("row-major Map: zero-copy save, in-place load") {
    Eigen::Map<Eigen::Matrix<double, Dynamic, Dynamic, RowMajor>> m(buf.data(), 3, 4);
    fill(m, 3);
    const StateDict sd = to_state_dict(m);
    CHECK(sd.tensor().data() == reinterpret_cast<const std::byte*>(buf.data()));
    CHECK(holds_row_major(sd.tensor(), m, {3, 4}));
    Eigen::Matrix<double, 3, 4> other;
    fill(other, 50);
    load_state_dict(m, to_state_dict(other));
    CHECK(same(m, other));
    CHECK(buf[5] == other(1, 1));  // written into the mapped buffer itself
  }
  SECTION("column-major Map: a row-major copy on save; loads transpose back in place") {
    Eigen::Map<Eigen::MatrixXd> m(buf.data(), 3, 4);
    fill(m, 3);
    const StateDict sd = to_state_dict(m);
    CHECK(sd.tensor().data() != reinterpret_cast<const std::byte*>(buf.data()));
    CHECK(holds_row_major(sd.tensor(), m, {3, 4}));
    Eigen::MatrixXd other(3, 4);
    fill(other, 50);
    load_state_dict(m, to_state_dict(other));
    CHECK(same(m, other));
    CHECK(buf[1] == other(1, 0));
  }
  SECTION("strided Map (every other row of a buffer) and a vector Map") {
    Eigen::Map<Eigen::Matrix<double, Dynamic, Dynamic, RowMajor>, 0, Eigen::OuterStride<>> m(buf.data(), 2, 3, Eigen::OuterStride<>(6));
    fill(m, 3);
    CHECK(holds_row_major(to_state_dict(m).tensor(), m, {2, 3}));
    Eigen::Matrix<double, 2, 3> other;
    fill(other, 60);
    load_state_dict(m, to_state_dict(other));
    CHECK(same(m, other));
    CHECK(buf[6] == other(1, 0));
    Eigen::Map<Eigen::ArrayXd> v(buf.data(), 12);
    CHECK(to_state_dict(v).tensor().shape() == Shape{12});
    CHECK(to_state_dict(v).tensor().data() == reinterpret_cast<const std::byte*>(buf.data()));
  }
  SECTION("a Map cannot resize: another shape is a mismatch, the memory is untouched") {
    Eigen::Map<Eigen::MatrixXd> m(buf.data(), 3, 4);
    fill(m, 3);
    const std::vector<double> before = buf;
    Eigen::MatrixXd other(4, 3);
    fill(other, 9);
    try {
      load_state_dict(m, to_state_dict(other));
      FAIL("loaded a [4, 3] tensor into a 3x4 Map");
    } catch (const mismatch_error& e) {
      CHECK(e.expected() == "[3, 4]");
      CHECK(e.got() == "[4, 3]");
    }
    CHECK(buf == before);
    Eigen::Map<const Eigen::MatrixXd> c(buf.data(), 3, 4);
    CHECK_THROWS_AS(load_state_dict(c, to_state_dict(Eigen::MatrixXd(c))), unsupported_error);
  }
}

namespace eigen_test {
struct Layer {
  Eigen::Matrix<float, 3, 4> weight;
  Eigen::VectorXf bias;
  Eigen::Matrix<float, 2, Dynamic, RowMajor> mixed;
  Eigen::Matrix<float, Dynamic, Dynamic, 0, 4, 4> bounded;
};
CKPT_FIELDS(Layer, weight, bias, mixed, bounded)
struct Model {
  Layer layer;
};
CKPT_FIELDS(Model, layer)
}  // namespace eigen_test

TEST_CASE("eigen: fixed shapes are checked, the error names the key path, expected and got", "[eigen][errors]") {
  ckpt_test::TempDir dir;
  eigen_test::Model m;
  fill(m.layer.weight, 0);
  m.layer.bias = Eigen::VectorXf::Ones(3);
  m.layer.mixed.resize(2, 5);
  fill(m.layer.mixed, 1);
  m.layer.bounded.resize(4, 2);
  fill(m.layer.bounded, 2);
  const StateDict good = to_state_dict(m);
  struct Case {
    const char* key;
    Tensor tensor;
    const char* expected;
    const char* got;
  };
  const Case cases[] = {
      {"layer.weight", Tensor(DType::f32, {4, 3}), "[3, 4]", "[4, 3]"},            // fixed: transposed
      {"layer.weight", Tensor(DType::f32, {12}), "[3, 4]", "[12]"},                // wrong rank
      {"layer.weight", Tensor(DType::f64, {3, 4}), "f32", "f64"},                  // wrong dtype
      {"layer.bias", Tensor(DType::f32, {3, 1}), "[*]", "[3, 1]"},                 // a vector needs 1-D
      {"layer.mixed", Tensor(DType::f32, {3, 5}), "[2, *]", "[3, 5]"},             // fixed rows, dynamic cols
      {"layer.bounded", Tensor(DType::f32, {5, 2}), "[<=4, <=4]", "[5, 2]"},       // beyond MaxRows
  };
  for (const auto& c : cases) {
    INFO(c.key << " <- " << shape_string(c.tensor.shape()));
    StateDict bad = good;
    bad[c.key] = c.tensor;
    save(dir / "bad.ckpt", bad);
    eigen_test::Model dst = m;
    try {
      load_into(dir / "bad.ckpt", dst);
      FAIL("loaded a mismatched tensor");
    } catch (const mismatch_error& e) {
      CHECK(e.key() == c.key);
      CHECK(e.expected() == c.expected);
      CHECK(e.got() == c.got);
      CHECK(e.path() == (dir / "bad.ckpt").string());
      CHECK_THAT(e.what(), ckpt_test::Contains("at '" + std::string(c.key) + "'"));
    }
    CHECK(same(dst.layer.weight, m.layer.weight));
  }
  // The mixed and bounded members accept any size their dynamic dimensions allow.
  StateDict resized = good;
  resized["layer.mixed"] = ckpt_test::random_tensor(DType::f32, {2, 7}, 1);
  resized["layer.bounded"] = ckpt_test::random_tensor(DType::f32, {1, 4}, 2);
  eigen_test::Model dst = m;
  load_state_dict(dst, resized);
  CHECK(dst.layer.mixed.cols() == 7);
  CHECK(dst.layer.bounded.rows() == 1);
  CHECK(holds_row_major(resized.at("layer.mixed").tensor(), dst.layer.mixed, {2, 7}));
}

TEST_CASE("eigen: Checkpoint and CheckpointManager track Eigen objects", "[eigen][manager]") {
  ckpt_test::TempDir dir;
  Eigen::MatrixXd w(3, 2);
  fill(w, 4);
  Eigen::Array<std::int64_t, Dynamic, 1> counts(4);
  fill(counts, 8);
  const Eigen::MatrixXd w0 = w;
  {
    Checkpoint ck{{"w", w}, {"counts", counts}};
    CheckpointManager mgr(dir / "run", ck, {.async = true});
    mgr.save(1);
    w.setZero();  // an async save staged its own copy
    mgr.wait_until_finished();
  }
  Eigen::MatrixXd w2;
  Eigen::Array<std::int64_t, Dynamic, 1> counts2;
  Checkpoint ck{{"w", w2}, {"counts", counts2}};
  CheckpointManager mgr(dir / "run", ck);
  REQUIRE(mgr.restore_or_initialize() == 1);
  CHECK(same(w2, w0));
  CHECK(same(counts2, counts));
}
