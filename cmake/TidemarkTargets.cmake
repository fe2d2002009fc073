# One helper per target kind, so every target gets the same warnings and include paths.

set(TIDEMARK_WARNINGS -Wall -Wextra -Wpedantic -Werror -Wshadow -Wnon-virtual-dtor
    -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual
    -Wimplicit-fallthrough)

function(tidemark_library name)
  add_library(${name} STATIC ${ARGN})
  target_include_directories(${name} PUBLIC ${CMAKE_SOURCE_DIR}/src)
  target_compile_options(${name} PRIVATE ${TIDEMARK_WARNINGS})
endfunction()

function(tidemark_executable name)
  add_executable(${name} ${ARGN})
  target_compile_options(${name} PRIVATE ${TIDEMARK_WARNINGS})
  target_link_libraries(${name} PRIVATE tidemark_lib)
endfunction()

# A test binary; LABEL says what it needs (unit: nothing; pg: a real PostgreSQL it starts).
# Unit tests are registered one by one. A binary that needs a server runs as one CTest test,
# so it starts its server once for all its cases.
function(tidemark_test name label)
  add_executable(${name} ${ARGN})
  target_compile_options(${name} PRIVATE ${TIDEMARK_WARNINGS})
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests)
  target_link_libraries(${name} PRIVATE tidemark_lib test_support GTest::gtest GTest::gmock
                        GTest::gtest_main)
  if(label STREQUAL "unit")
    gtest_discover_tests(${name} PROPERTIES LABELS ${label} DISCOVERY_TIMEOUT 60
                         EXTRA_ARGS --gtest_color=no)
  else()
    add_test(NAME ${name} COMMAND ${name} --gtest_color=no)
    set_tests_properties(${name} PROPERTIES LABELS ${label} TIMEOUT 2400)
  endif()
endfunction()
