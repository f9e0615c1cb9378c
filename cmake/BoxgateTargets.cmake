# Helpers shared by every boxgate target.

# BOXGATE_SANITIZE=address,undefined (or thread) instruments every target.
set(BOXGATE_SANITIZE "" CACHE STRING "Comma-separated sanitizers, e.g. address,undefined")

function(boxgate_enable_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic)
endfunction()

# BOXGATE_FUZZ=ON (clang, scripts/fuzz): every target gets libFuzzer's
# coverage instrumentation, so the fuzzers are guided by the code under test,
# not only by their own driver.
option(BOXGATE_FUZZ "Instrument every target for libFuzzer (clang)" OFF)

function(boxgate_enable_sanitizer target)
  if(BOXGATE_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=${BOXGATE_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
    target_link_options(${target} PRIVATE -fsanitize=${BOXGATE_SANITIZE})
  endif()
  if(BOXGATE_FUZZ)
    target_compile_options(${target} PRIVATE -fsanitize=fuzzer-no-link)
  endif()
endfunction()

# Precompiled headers: nlohmann/json, spdlog (with fmt) and GoogleTest are
# most of what each translation unit compiles; parsing them once per target
# instead of once per file cuts the build's CPU time by about a sixth.
# A target of one or two files gains nothing (the header is parsed once either
# way), so those go without. BOXGATE_PCH=OFF shows what a file forgot to include.
option(BOXGATE_PCH "Precompile the heavy third-party headers once per target" ON)
set(BOXGATE_PCH_HEADERS
  <algorithm> <chrono> <cstdint> <functional> <memory> <optional> <string> <string_view>
  <unordered_map> <vector> <nlohmann/json.hpp> <spdlog/spdlog.h>)

function(boxgate_precompile target)
  get_target_property(sources ${target} SOURCES)
  list(LENGTH sources count)
  if(NOT BOXGATE_PCH OR count LESS 3)
    return()
  endif()
  set(headers ${BOXGATE_PCH_HEADERS})
  get_target_property(libs ${target} LINK_LIBRARIES)
  if("GTest::gtest" IN_LIST libs)
    list(APPEND headers <gtest/gtest.h> <thread>)
  endif()
  target_precompile_headers(${target} PRIVATE ${headers})
endfunction()

# One call gives a target the project's warnings, sanitizers and precompiled
# headers. Call it after target_link_libraries (the headers depend on them).
function(boxgate_target target)
  boxgate_enable_warnings(${target})
  boxgate_enable_sanitizer(${target})
  boxgate_precompile(${target})
endfunction()


# Unity builds for the test suites: their files share GoogleTest's and
# nlohmann's templates, which a batch of 8 files instantiates and optimises
# once instead of 8 times (about half the suites' compile time). Names at file
# scope must then differ between test files. BOXGATE_UNITY_TESTS=OFF compiles
# them one by one (quicker while editing one test).
option(BOXGATE_UNITY_TESTS "Compile the test suites in batches (unity build)" ON)
function(boxgate_unity target)
  if(BOXGATE_UNITY_TESTS)
    set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE 8)
  endif()
endfunction()
