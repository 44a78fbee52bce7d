// Catch2 v2 or v3, whichever configure found (CKPT_CATCH2_MAJOR): every test includes this
// header instead of Catch2's own, and names the two spellings that differ through ckpt_test::.
#pragma once

#if CKPT_CATCH2_MAJOR >= 3
#include <catch2/catch_approx.hpp>                      // Approx
#include <catch2/catch_message.hpp>                     // INFO, WARN
#include <catch2/catch_template_test_macros.hpp>        // TEMPLATE_TEST_CASE
#include <catch2/catch_test_macros.hpp>                 // TEST_CASE, REQUIRE, ...
#include <catch2/generators/catch_generators.hpp>       // GENERATE
#include <catch2/matchers/catch_matchers_string.hpp>    // ContainsSubstring
#else
#include <catch2/catch.hpp>
#endif

#include <string>  // Contains' argument

namespace ckpt_test {
#if CKPT_CATCH2_MAJOR >= 3
using Catch::Approx;
/// Substring matcher: `Contains` in v2, `ContainsSubstring` in v3.
inline auto Contains(const std::string& s) { return Catch::Matchers::ContainsSubstring(s); }
#else
using Catch::Detail::Approx;
inline auto Contains(const std::string& s) { return Catch::Matchers::Contains(s); }
#endif
}  // namespace ckpt_test

using ckpt_test::Approx;
