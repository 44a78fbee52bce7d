// Unit tests for ckpt/tensor.hpp: allocation, alignment, overflow checks, typed access, views,
// and the built-in tensor_traits adapters.
#include "ckpt_catch.hpp"
#include <ckpt/tensor.hpp>
#include <cstdint>
#include <limits>

using namespace ckpt;

TEST_CASE("owning tensors are zeroed, 64-byte aligned and sized by shape", "[tensor]") {
  for (Shape s : {Shape{}, Shape{0}, Shape{7}, Shape{2, 3, 4, 5}}) {
    Tensor t(DType::f32, s);
    CHECK(reinterpret_cast<std::uintptr_t>(t.data()) % 64 == 0);
    CHECK(t.nbytes() == static_cast<std::size_t>(*checked_numel(s)) * 4);
    for (auto b : t.bytes()) REQUIRE(b == std::byte{0});
  }
  CHECK(Tensor(DType::f64, {}).numel() == 1);  // 0-d holds one element
  CHECK(Tensor(DType::f64, {3, 0}).numel() == 0);
}

TEST_CASE("shape overflow and negative dims are refused", "[tensor]") {
  CHECK_FALSE(checked_numel({std::int64_t{1} << 32, std::int64_t{1} << 32}).has_value());
  CHECK_FALSE(checked_numel({-1}).has_value());
  CHECK_FALSE(checked_nbytes(DType::f64, {std::int64_t{1} << 62}).has_value());
  CHECK_THROWS_AS(Tensor(DType::f32, {std::int64_t{1} << 62, 4}), mismatch_error);
  CHECK_THROWS_AS(Tensor(DType::f32, {-3}), mismatch_error);
}

TEST_CASE("typed access checks the dtype", "[tensor]") {
  Tensor t = Tensor::from<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.values<float>()[5] == 6.0f);
  CHECK_THROWS_AS(t.values<double>(), mismatch_error);
  try {
    (void)t.values<std::int32_t>();
    FAIL("no throw");
  } catch (const mismatch_error& e) {
    CHECK(e.expected() == "f32");
    CHECK(e.got() == "i32");
  }
  CHECK(Tensor::scalar(2.5).item<double>() == 2.5);
  CHECK_THROWS_AS(t.item<float>(), mismatch_error);
}

TEST_CASE("copies share bytes, clone deep-copies, borrowed views are read-only", "[tensor]") {
  Tensor a = Tensor::from<int>({1, 2, 3});
  Tensor b = a;
  b.mutable_values<int>()[0] = 9;
  CHECK(a.values<int>()[0] == 9);
  Tensor c = a.clone();
  c.mutable_values<int>()[0] = 1;
  CHECK(a.values<int>()[0] == 9);
  CHECK_FALSE(a == c);

  std::vector<float> v{1, 2, 3};
  Tensor view = Tensor::borrow(as_view(v));
  CHECK(view.data() == reinterpret_cast<const std::byte*>(v.data()));  // no copy
  CHECK_FALSE(view.writable());
  CHECK_THROWS_AS(view.mutable_data(), unsupported_error);
}

TEST_CASE("built-in tensor_traits: vector, array, span, scalar", "[tensor][traits]") {
  STATIC_REQUIRE(TensorLike<std::vector<float>>);
  STATIC_REQUIRE(TensorLike<std::array<std::int16_t, 4>>);
  STATIC_REQUIRE(TensorLike<std::span<double>>);
  STATIC_REQUIRE(TensorLike<double>);
  STATIC_REQUIRE(!TensorLike<std::string>);

  std::vector<double> v{1, 2, 3};
  TensorView tv = as_view(v);
  CHECK(tv.dtype == DType::f64);
  CHECK(tv.shape == Shape{3});

  std::vector<double> w;
  tensor_traits<std::vector<double>>::assign(w, Tensor::copy_of(tv));
  CHECK(w == v);
  std::vector<float> wrong;
  CHECK_THROWS_AS(tensor_traits<std::vector<float>>::assign(wrong, Tensor::copy_of(tv)), mismatch_error);

  std::array<std::int16_t, 2> arr{};
  tensor_traits<std::array<std::int16_t, 2>>::assign(arr, Tensor::from<std::int16_t>({4, 5}));
  CHECK(arr == std::array<std::int16_t, 2>{4, 5});
  using arr_traits = tensor_traits<std::array<std::int16_t, 2>>;
  CHECK_THROWS_AS(arr_traits::assign(arr, Tensor::from<std::int16_t>({4, 5, 6})), mismatch_error);

  double buf[2] = {0, 0};
  std::span<double> sp(buf);
  tensor_traits<std::span<double>>::assign(sp, Tensor::from<double>({7, 8}));
  CHECK(buf[1] == 8);

  CHECK(as_view(3.5f).shape.empty());  // scalars are 0-d
}
