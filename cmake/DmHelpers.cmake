# Helpers shared by every chapter, test and benchmark.

# Warnings for the project's own code (not for torch's headers, which are SYSTEM).
function(dm_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wno-unused-parameter)
endfunction()

# Reuse the precompiled <torch/torch.h> of the `dm` library in another target.
function(dm_use_pch target)
  if(DM_USE_PCH)
    target_precompile_headers(${target} REUSE_FROM dm_pch)
    # The PCH is compiled -fPIC (it also serves the shared library); executables
    # default to -fPIE, which gcc treats as a different setting and would then
    # silently ignore the PCH. -fPIC code links into a PIE just the same.
    target_compile_options(${target} PRIVATE -fPIC)
  endif()
endfunction()

# dm_add_chapter(01_langevin [extra sources...])
# Builds chapters/<name>/main.cpp (+ extras) into <build>/bin/<name>.
function(dm_add_chapter name)
  set(dir ${CMAKE_SOURCE_DIR}/chapters/${name})
  set(sources ${dir}/main.cpp)
  foreach(src IN LISTS ARGN)
    list(APPEND sources ${dir}/${src})
  endforeach()
  add_executable(${name} ${sources})
  target_link_libraries(${name} PRIVATE dm)
  dm_warnings(${name})
  dm_use_pch(${name})
  set_property(GLOBAL APPEND PROPERTY DM_CHAPTERS ${name})
endfunction()

# dm_add_gtest(name sources...) — a GoogleTest executable registered with ctest.
function(dm_add_gtest name)
  add_executable(${name} ${ARGN})
  target_link_libraries(${name} PRIVATE dm GTest::gtest GTest::gtest_main)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/common)
  dm_warnings(${name})
  dm_use_pch(${name})
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 60
    PROPERTIES ENVIRONMENT "DM_BIN_DIR=${CMAKE_BINARY_DIR}/bin")
endfunction()
