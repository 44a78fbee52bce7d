# libtorch for the torch integration's example and tests (include/ckpt/integrations/torch.hpp
# itself needs nothing from CMake: a user links torch as usual). Debian's libtorch-dev puts its
# config in /usr/lib/<arch>/cmake/Torch. CKPT_HAVE_TORCH says whether it was found; the
# imported `torch` target brings its headers as SYSTEM includes (no warnings from them under
# -Werror) and -D_GLIBCXX_USE_CXX11_ABI=1.
find_package(Torch QUIET)
if(Torch_FOUND AND TARGET torch)
  set(CKPT_HAVE_TORCH ON)
  message(STATUS "ckpt: libtorch ${Torch_VERSION} found: the libtorch example and integration tests are built")
else()
  set(CKPT_HAVE_TORCH OFF)
  message(STATUS "ckpt: libtorch NOT found (Debian: libtorch-dev): no libtorch example or integration tests")
endif()
