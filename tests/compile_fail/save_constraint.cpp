// Must not compile: ckpt::save is constrained by the Checkpointable concept.
#include <ckpt/ckpt.hpp>
struct Plain {
  int x;
};
int main() { ckpt::save("x.ckpt", Plain{1}); }
