// ckpt/fwd.hpp — forward declarations, so a header can declare hooks (state_dict /
// load_state_dict) for its types without including the whole library (as json_fwd.hpp).
#pragma once

namespace ckpt {
class StateDict;
class Tensor;
struct TensorView;
struct LoadOptions;
struct LoadReport;
struct SaveOptions;
class KeyPath;
template <class T, class = void> struct checkpoint_traits;
template <class T, class = void> struct tensor_traits;
template <class F, class = void> struct archive_traits;
}  // namespace ckpt
