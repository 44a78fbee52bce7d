// Must not compile: a type with no hooks. The error must say how to fix it.
#include <ckpt/ckpt.hpp>
struct Plain {
  int x;
};
int main() { (void)ckpt::to_state_dict(Plain{1}); }
