// Must not compile: a type with both member hooks and ADL hooks is ambiguous.
#include <ckpt/ckpt.hpp>
struct Both {
  int x = 0;
  ckpt::StateDict state_dict() const { return {}; }
  ckpt::LoadReport load_state_dict(const ckpt::StateDict&, const ckpt::LoadOptions&) { return {}; }
};
ckpt::StateDict state_dict(const Both&) { return {}; }
ckpt::LoadReport load_state_dict(Both&, const ckpt::StateDict&, const ckpt::LoadOptions&) { return {}; }
int main() { (void)ckpt::to_state_dict(Both{}); }
