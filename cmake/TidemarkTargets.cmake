# One helper per target kind, so every target gets the same warnings and include paths.

set(TIDEMARK_WARNINGS -Wall -Wextra -Wpedantic -Werror -Wshadow -Wnon-virtual-dtor
    -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual
    -Wimplicit-fallthrough)

# A module: the library tm_<name> of src/<name>/*.cc (the cli module leaves out main.cc, the
# binary's). Its include root holds only src/<name>, so that "<name>/x.h" resolves for it and
# for the modules that name it in USES, and for no other. LIBS: the packages it uses.
function(tidemark_module name)
  cmake_parse_arguments(M "" "" "USES;LIBS" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/${name}/*.cc)
  list(FILTER sources EXCLUDE REGEX "/src/cli/main\\.cc$")
  set(root ${CMAKE_BINARY_DIR}/module-include/${name})
  file(MAKE_DIRECTORY ${root})
  if(NOT EXISTS ${root}/${name})
    file(CREATE_LINK ${CMAKE_SOURCE_DIR}/src/${name} ${root}/${name} SYMBOLIC)
  endif()
  add_library(tm_${name} STATIC ${sources})
  target_include_directories(tm_${name} PUBLIC ${root})
  target_compile_options(tm_${name} PRIVATE ${TIDEMARK_WARNINGS})
  foreach(dep ${M_USES})
    target_link_libraries(tm_${name} PUBLIC tm_${dep})
  endforeach()
  target_link_libraries(tm_${name} PUBLIC ${M_LIBS})
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
