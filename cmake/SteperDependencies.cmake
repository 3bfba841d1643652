# Every dependency is a Debian package; scripts/install.sh installs them.
find_package(Threads REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(CLI11 REQUIRED)

# Debian's Xapian ships a config file with variables but no imported target.
find_package(xapian REQUIRED CONFIG)
if(NOT TARGET Xapian::xapian)
  add_library(Xapian::xapian INTERFACE IMPORTED)
  set_target_properties(Xapian::xapian PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${XAPIAN_INCLUDE_DIR}"
    INTERFACE_LINK_LIBRARIES "${XAPIAN_LIBRARIES}")
endif()
find_program(STEPER_XAPIAN_TCPSRV xapian-tcpsrv)

# LibTorch: Debian's is CPU-only; a CUDA build works the same way, the device
# being a runtime option. Its config gives plain variables; wrap them.
if(STEPER_WITH_TORCH)
find_package(Torch REQUIRED)
endif()
if(STEPER_WITH_TORCH AND NOT TARGET Torch::torch)
  add_library(Torch::torch INTERFACE IMPORTED)
  set_target_properties(Torch::torch PROPERTIES INTERFACE_LINK_LIBRARIES "${TORCH_LIBRARIES}")
  separate_arguments(_steper_torch_flags UNIX_COMMAND "${TORCH_CXX_FLAGS}")
  set_target_properties(Torch::torch PROPERTIES INTERFACE_COMPILE_OPTIONS "${_steper_torch_flags}")
endif()

# NCCL: a CUDA LibTorch built with it has c10d::ProcessGroupNCCL, which
# data parallelism then uses for CUDA ranks. Detected by compiling and
# linking the one call steper makes (Debian's LibTorch ships the header, but
# neither the NCCL build nor the library, so this fails there: Gloo).
if(STEPER_WITH_TORCH)
  include(CheckCXXSourceCompiles)
  set(CMAKE_REQUIRED_INCLUDES ${TORCH_INCLUDE_DIRS})
  set(CMAKE_REQUIRED_LIBRARIES ${TORCH_LIBRARIES})
  set(CMAKE_REQUIRED_FLAGS "${TORCH_CXX_FLAGS}")
  set(CMAKE_REQUIRED_DEFINITIONS -DUSE_C10D_NCCL)
  set(CMAKE_REQUIRED_QUIET ON)
  check_cxx_source_compiles([[
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
int main() {
  c10::intrusive_ptr<c10d::Store> store;
  auto options = c10d::ProcessGroupNCCL::Options::create();
  auto group = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, 0, 1, options);
  return group ? 0 : 1;
}]] STEPER_HAVE_NCCL)
  unset(CMAKE_REQUIRED_INCLUDES)
  unset(CMAKE_REQUIRED_LIBRARIES)
  unset(CMAKE_REQUIRED_FLAGS)
  unset(CMAKE_REQUIRED_DEFINITIONS)
  unset(CMAKE_REQUIRED_QUIET)
  if(STEPER_HAVE_NCCL)
    message(STATUS "CUDA data parallelism: NCCL")
  else()
    message(STATUS "CUDA data parallelism: Gloo (this LibTorch has no NCCL)")
  endif()
endif()

# BLAS: the attention kernel calls sgemm_ itself. Linked by its soname
# (libblas.so.3), which resolves to the BLAS LibTorch loads (OpenBLAS here).
find_package(BLAS REQUIRED)

# ICU: Unicode normalisation (NFC) for tokenizer.json normalizers.
find_package(ICU REQUIRED COMPONENTS uc)

# SentencePiece ships a pkg-config file only.
find_package(PkgConfig REQUIRED)
pkg_check_modules(sentencepiece REQUIRED IMPORTED_TARGET sentencepiece)

# cpp-httplib: Debian builds it as a shared library with TLS, zlib and brotli;
# its pkg-config file carries the matching definitions.
pkg_check_modules(httplib REQUIRED IMPORTED_TARGET cpp-httplib)

# zlib: the trace viewer embeds its bulk (steps, passages) gzip-compressed.
find_package(ZLIB REQUIRED)
