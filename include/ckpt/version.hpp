// ckpt/version.hpp — library and on-disk format versions.
#pragma once

#define CKPT_VERSION_MAJOR 0
#define CKPT_VERSION_MINOR 1
#define CKPT_VERSION_PATCH 0

namespace ckpt {
/// Library version as a string, e.g. "0.1.0".
inline constexpr const char* version_string = "0.1.0";
/// Version of the native `.ckpt` container written by this library (docs/FORMAT.md).
inline constexpr unsigned native_format_version = 1;
}  // namespace ckpt
