# steper_configure(<target>): the compile settings every steper target shares.
# Applied per target, never as global flags.
function(steper_configure target)
  target_compile_features(${target} PUBLIC cxx_std_17)
  set_target_properties(${target} PROPERTIES CXX_EXTENSIONS OFF)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Winvalid-pch)
  if(STEPER_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  # The SentencePiece shim is loaded into a link namespace of its own, where
  # no sanitizer runtime is: it stays uninstrumented.
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "MODULE_LIBRARY")
    return()
  endif()
  # Sanitizers over the library code too, not only the harness or the test:
  # any undefined behaviour fails the run.
  if(STEPER_SANITIZE OR STEPER_BUILD_FUZZ)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
  # Fuzzing: coverage feedback from every steper source a harness reaches.
  if(STEPER_BUILD_FUZZ)
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link)
  endif()
endfunction()

# steper_part(<name> SOURCES ... DEPENDS ...): one library per part of
# DESIGN.md. Linking only the parts a part may use keeps the dependency table
# honest: a back-edge fails to link.
function(steper_part name)
  cmake_parse_arguments(ARG "" "" "SOURCES;DEPENDS;PRIVATE_DEPENDS" ${ARGN})
  add_library(steper_${name} STATIC ${ARG_SOURCES})
  add_library(steper::${name} ALIAS steper_${name})
  target_include_directories(steper_${name}
    PUBLIC ${PROJECT_SOURCE_DIR}/include
    PRIVATE ${PROJECT_SOURCE_DIR}/src/${name})
  target_link_libraries(steper_${name} PUBLIC ${ARG_DEPENDS} PRIVATE ${ARG_PRIVATE_DEPENDS})
  steper_configure(steper_${name})
endfunction()

# steper_torch_sources(<target> <source>...): names the sources of <target>
# that use tensors. LibTorch's headers are most of such a file's compile time
# (about 20 s of CPU for a near-empty one), so they are compiled once, as a
# precompiled header in steper_model, and every other target reuses it. The
# target's other sources skip it: they stay torch-free, as they are written.
function(steper_torch_sources target)
  if(target STREQUAL "steper_model")
    target_precompile_headers(${target} PRIVATE <torch/torch.h>)
  else()
    target_precompile_headers(${target} REUSE_FROM steper_model)
  endif()
  get_target_property(all ${target} SOURCES)
  foreach(src IN LISTS all)
    if(NOT src IN_LIST ARGN)
      set_source_files_properties(${src} TARGET_DIRECTORY ${target} PROPERTIES SKIP_PRECOMPILE_HEADERS ON)
    endif()
  endforeach()
endfunction()
