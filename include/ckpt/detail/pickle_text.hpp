// ckpt/detail/pickle_text.hpp — the text arguments of protocol-0 opcodes, for the restricted
// unpickler (unpickle.hpp): INT / LONG integers ("123", "123L"), STRING's Python 2 quoted repr
// with its escapes, and UNICODE's raw-unicode-escape (latin-1 plus \uXXXX / \UXXXXXXXX). Each
// takes `fail(message)`, a callable that throws (the unpickler's format_error with the offset).
#pragma once

#include <charconv>     // numbers in text
#include <cstdint>      // values
#include <string>       // decoded text
#include <system_error>  // std::errc

#include "pickle.hpp"  // append_utf8

namespace ckpt::detail::pickle::text {

/// A hexadecimal number ("e9", "0001f600").
template <class Fail>
std::uint32_t hex(const std::string& h, Fail&& fail) {
  std::uint32_t v = 0;
  auto [p, ec] = std::from_chars(h.data(), h.data() + h.size(), v, 16);
  if (ec != std::errc() || p != h.data() + h.size()) fail("bad hex escape '" + h + "'");
  return v;
}

/// An INT / LONG argument: decimal, optional sign, optional trailing 'L'; 64 bits at most.
template <class Fail>
std::int64_t parse_int(std::string s, Fail&& fail) {
  if (!s.empty() && s.back() == 'L') s.pop_back();
  std::int64_t v = 0;
  const char* b = s.data() + (!s.empty() && s[0] == '+');
  auto [p, ec] = std::from_chars(b, s.data() + s.size(), v);
  if (ec == std::errc::result_out_of_range) fail("integer does not fit in 64 bits");
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) fail("bad integer text '" + s + "'");
  return v;
}

/// STRING's argument: the Python 2 repr of a str, '...' or "...", with its escapes undone.
template <class Fail>
std::string unquote(const std::string& s, Fail&& fail) {
  if (s.size() < 2 || (s[0] != '\'' && s[0] != '"') || s.back() != s[0]) fail("STRING opcode argument is not quoted");
  std::string r;
  for (std::size_t i = 1; i + 1 < s.size(); ++i) {
    char c = s[i];
    if (c != '\\') { r += c; continue; }
    if (++i + 1 > s.size() - 1) fail("bad escape in STRING");
    c = s[i];
    switch (c) {
      case 'n': r += '\n'; break;
      case 't': r += '\t'; break;
      case 'r': r += '\r'; break;
      case 'a': r += '\a'; break;
      case 'b': r += '\b'; break;
      case 'f': r += '\f'; break;
      case 'v': r += '\v'; break;
      case '\n': break;
      case 'x': {
        if (i + 3 > s.size() - 1) fail("bad \\x escape in STRING");
        r += static_cast<char>(hex(s.substr(i + 1, 2), fail));
        i += 2;
        break;
      }
      default:
        if (c >= '0' && c <= '7') {
          unsigned v = 0;
          std::size_t k = 0;
          for (; k < 3 && i + k < s.size() - 1 && s[i + k] >= '0' && s[i + k] <= '7'; ++k) v = v * 8 + static_cast<unsigned>(s[i + k] - '0');
          r += static_cast<char>(v & 0xff);
          i += k - 1;
        } else {
          r += c;  // \\ \' \" and unknown escapes (kept as the character)
        }
    }
  }
  return r;
}

/// UNICODE's argument: latin-1 text with \uXXXX and \UXXXXXXXX escapes, as UTF-8.
template <class Fail>
std::string raw_unicode_escape(const std::string& s, Fail&& fail) {
  std::string r;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c == '\\' && i + 1 < s.size() && (s[i + 1] == 'u' || s[i + 1] == 'U')) {
      const std::size_t n = s[i + 1] == 'u' ? 4 : 8;
      if (i + 2 + n > s.size()) fail("bad escape in UNICODE");
      const auto cp = hex(s.substr(i + 2, n), fail);
      if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) fail("bad code point in UNICODE");
      append_utf8(r, cp);
      i += 1 + n;
    } else {
      append_utf8(r, c);
    }
  }
  return r;
}

}  // namespace ckpt::detail::pickle::text
