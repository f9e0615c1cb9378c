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

# One call gives a target the project's warnings and sanitizers.
function(boxgate_target target)
  boxgate_enable_warnings(${target})
  boxgate_enable_sanitizer(${target})
endfunction()
