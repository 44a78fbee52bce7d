// ckpt/types/random.hpp — built-in Checkpointables for the standard random engines and the
// common distributions (which carry state: normal_distribution caches a value). Their state
// is the standard's textual representation (operator<< / >>), which the standard guarantees
// restores an equal engine — so a resumed run draws exactly the numbers the original would.
#pragma once

#include <random>   // engines and distributions
#include <sstream>  // textual state
#include <string>   // JSON string leaf

#include "../concepts.hpp"  // checkpoint_traits

namespace ckpt {
namespace detail {
template <class E>
struct stream_state_traits {
  static StateDict state_dict(const E& e) {
    std::ostringstream os;
    os.imbue(std::locale::classic());
    os << e;
    return StateDict(Value(os.str()));
  }
  static LoadReport load_state_dict(E& e, const StateDict& sd, const LoadOptions&) {
    if (!sd.is_value() || !sd.value().is_string()) throw mismatch_error("wrong kind of value for a random engine or distribution", "", "string (its textual state)", sd.is_tensor() ? "tensor" : sd.is_dict() ? "dict" : std::string(sd.value().type_name()));
    std::istringstream is(sd.value().get<std::string>());
    is.imbue(std::locale::classic());
    E tmp;
    is >> tmp;
    if (is.fail()) throw mismatch_error("cannot parse the state of a random engine or distribution", "", "its operator<< output", "'" + sd.value().get<std::string>().substr(0, 40) + "...'");
    e = tmp;
    return {};
  }
};
}  // namespace detail

template <class U, std::size_t W, std::size_t N, std::size_t M, std::size_t R, U A, std::size_t Us, U D, std::size_t S, U B, std::size_t T, U C, std::size_t L, U F>
struct checkpoint_traits<std::mersenne_twister_engine<U, W, N, M, R, A, Us, D, S, B, T, C, L, F>>
    : detail::stream_state_traits<std::mersenne_twister_engine<U, W, N, M, R, A, Us, D, S, B, T, C, L, F>> {};
template <class U, U A, U C, U M>
struct checkpoint_traits<std::linear_congruential_engine<U, A, C, M>>
    : detail::stream_state_traits<std::linear_congruential_engine<U, A, C, M>> {};
template <class U, std::size_t W, std::size_t S, std::size_t R>
struct checkpoint_traits<std::subtract_with_carry_engine<U, W, S, R>>
    : detail::stream_state_traits<std::subtract_with_carry_engine<U, W, S, R>> {};
template <class E, std::size_t P, std::size_t R>
struct checkpoint_traits<std::discard_block_engine<E, P, R>> : detail::stream_state_traits<std::discard_block_engine<E, P, R>> {};
template <class E, std::size_t W, class U>
struct checkpoint_traits<std::independent_bits_engine<E, W, U>> : detail::stream_state_traits<std::independent_bits_engine<E, W, U>> {};
template <class E, std::size_t K>
struct checkpoint_traits<std::shuffle_order_engine<E, K>> : detail::stream_state_traits<std::shuffle_order_engine<E, K>> {};

template <class T>
struct checkpoint_traits<std::normal_distribution<T>> : detail::stream_state_traits<std::normal_distribution<T>> {};
template <class T>
struct checkpoint_traits<std::uniform_real_distribution<T>> : detail::stream_state_traits<std::uniform_real_distribution<T>> {};
template <class T>
struct checkpoint_traits<std::uniform_int_distribution<T>> : detail::stream_state_traits<std::uniform_int_distribution<T>> {};
template <>
struct checkpoint_traits<std::bernoulli_distribution> : detail::stream_state_traits<std::bernoulli_distribution> {};

}  // namespace ckpt
