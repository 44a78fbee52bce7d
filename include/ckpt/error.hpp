// ckpt/error.hpp — the exception hierarchy. Every message has the shape
//   ckpt: <what> in '<path>' at '<key.path>': expected X, got Y
// with the parts that do not apply left out, so a user can grep logs for the file and key.
#pragma once

#include <cstdint>    // std::uint64_t offsets
#include <stdexcept>  // std::runtime_error base
#include <string>     // messages and fields
#include <utility>    // std::move

namespace ckpt {

/// Base of every exception the library throws.
class error : public std::runtime_error {
 public:
  error(std::string what, std::string path = {}, std::string key = {}, std::string expected = {},
        std::string got = {})
      : std::runtime_error(compose(what, path, key, expected, got)),
        reason_(std::move(what)),
        path_(std::move(path)),
        key_(std::move(key)),
        expected_(std::move(expected)),
        got_(std::move(got)) {}

  /// File or directory the error concerns ("" when none).
  const std::string& path() const noexcept { return path_; }
  /// Dotted key path of the entry concerned ("" when none).
  const std::string& key() const noexcept { return key_; }
  const std::string& expected() const noexcept { return expected_; }
  const std::string& got() const noexcept { return got_; }
  /// The "<what>" part alone, without file, key and expected/got.
  const std::string& reason() const noexcept { return reason_; }

  static std::string compose(const std::string& what, const std::string& path,
                             const std::string& key, const std::string& expected,
                             const std::string& got) {
    std::string m = "ckpt: " + what;
    if (!path.empty()) m += " in '" + path + "'";
    if (!key.empty()) m += " at '" + key + "'";
    if (!expected.empty() || !got.empty()) m += ": expected " + expected + ", got " + got;
    return m;
  }

 protected:
  struct raw_message {};
  error(raw_message, const std::string& message, std::string path)
      : std::runtime_error(message), reason_(message), path_(std::move(path)) {}

 private:
  std::string reason_, path_, key_, expected_, got_;
};

/// An operating-system call failed; carries errno (0 when not from errno).
class io_error : public error {
 public:
  io_error(const std::string& what, const std::string& path, int err = 0)
      : error(raw_message{}, compose(what, path, {}, {}, {}) + (err ? ": " + errno_text(err) : ""),
              path),
        errno_(err) {}
  int code() const noexcept { return errno_; }
  static std::string errno_text(int e);

 private:
  int errno_;
};

/// The bytes are not a valid file of the expected format; `offset` is where it went wrong.
class format_error : public error {
 public:
  format_error(const std::string& what, std::string path, std::uint64_t offset = no_offset,
               std::string key = {}, std::string expected = {}, std::string got = {})
      : error(offset == no_offset ? what : what + " (at byte " + std::to_string(offset) + ")",
              std::move(path), std::move(key), std::move(expected), std::move(got)),
        offset_(offset) {}
  static constexpr std::uint64_t no_offset = ~std::uint64_t{0};
  std::uint64_t offset() const noexcept { return offset_; }

 private:
  std::uint64_t offset_;
};

/// A checksum did not match: the stored bytes changed after they were written.
class corrupt_error : public error {
 public:
  corrupt_error(const std::string& what, std::string path, std::string key, std::string expected,
                std::string got)
      : error(what, std::move(path), std::move(key), std::move(expected), std::move(got)) {}
};

/// Keys are missing or unexpected (strict load), or a key path does not exist.
class key_error : public error {
 public:
  explicit key_error(const std::string& what, std::string path = {}, std::string key = {})
      : error(what, std::move(path), std::move(key)) {}
};

/// A value exists but its dtype, shape or kind differs from what the destination needs.
class mismatch_error : public error {
 public:
  mismatch_error(const std::string& what, std::string key, std::string expected, std::string got,
                 std::string path = {})
      : error(what, std::move(path), std::move(key), std::move(expected), std::move(got)) {}
};

/// The request is valid but this build or format cannot do it (e.g. bf16 in .npy).
class unsupported_error : public error {
 public:
  explicit unsupported_error(const std::string& what, std::string path = {}, std::string key = {})
      : error(what, std::move(path), std::move(key)) {}
};

}  // namespace ckpt

#include <cstring>  // std::strerror

inline std::string ckpt::io_error::errno_text(int e) {
  return std::string(std::strerror(e));
}
