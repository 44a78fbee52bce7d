// ckpt/detail/base64.hpp — RFC 4648 base64 (with padding), strict on decode.
#pragma once

#include <cstddef>      // std::byte
#include <optional>     // decode failure
#include <span>         // input
#include <string>       // output
#include <string_view>  // input
#include <vector>       // output

namespace ckpt::detail {

inline std::string base64_encode(std::span<const std::byte> in) {
  static constexpr char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    const unsigned v = (unsigned(in[i]) << 16) | (unsigned(in[i + 1]) << 8) | unsigned(in[i + 2]);
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += t[(v >> 6) & 63];
    out += t[v & 63];
  }
  if (const auto rem = in.size() - i) {
    unsigned v = unsigned(in[i]) << 16;
    if (rem == 2) v |= unsigned(in[i + 1]) << 8;
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += rem == 2 ? t[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

/// Decode; nullopt on any invalid character, bad length or bad padding.
inline std::optional<std::vector<std::byte>> base64_decode(std::string_view s) {
  auto val = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (s.size() % 4) return std::nullopt;
  std::vector<std::byte> out;
  out.reserve(s.size() / 4 * 3);
  for (std::size_t i = 0; i < s.size(); i += 4) {
    const bool last = i + 4 == s.size();
    const int a = val(s[i]), b = val(s[i + 1]);
    const int c = (last && s[i + 2] == '=') ? -2 : val(s[i + 2]);
    const int d = (last && s[i + 3] == '=') ? -2 : val(s[i + 3]);
    if (a < 0 || b < 0 || c == -1 || d == -1 || (c == -2 && d != -2)) return std::nullopt;
    const unsigned v = (unsigned(a) << 18) | (unsigned(b) << 12) | (c >= 0 ? unsigned(c) << 6 : 0u) | (d >= 0 ? unsigned(d) : 0u);
    out.push_back(std::byte(v >> 16));
    if (c >= 0) out.push_back(std::byte((v >> 8) & 255));
    if (d >= 0) out.push_back(std::byte(v & 255));
  }
  return out;
}

}  // namespace ckpt::detail
