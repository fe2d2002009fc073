# One helper per target kind, so every target gets the same warnings and include paths.

set(TIDEMARK_WARNINGS -Wall -Wextra -Wpedantic -Werror -Wshadow -Wnon-virtual-dtor
    -Wold-style-cast -Wcast-align -Wunused -Woverloaded-virtual
    -Wimplicit-fallthrough)

# A module: the library of src/<path>/*.cc, named tm_<path> with "/" as "_" (tm_source_postgres;
# the cli module leaves out main.cc, the binary's). Its include root holds only src/<path>, so
# that "<path>/x.h" resolves for it and for the modules that name it in USES, and for no other.
# LIBS: the packages it uses.
function(tidemark_module path)
  cmake_parse_arguments(M "" "" "USES;LIBS" ${ARGN})
  string(REPLACE "/" "_" name ${path})
  file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/src/${path}/*.cc)
  list(FILTER sources EXCLUDE REGEX "/src/cli/main\\.cc$")
  set(root ${CMAKE_BINARY_DIR}/module-include/${name})
  get_filename_component(parent ${root}/${path} DIRECTORY)
  file(MAKE_DIRECTORY ${parent})
  if(NOT EXISTS ${root}/${path})
    file(CREATE_LINK ${CMAKE_SOURCE_DIR}/src/${path} ${root}/${path} SYMBOLIC)
  endif()
  if(sources)
    add_library(tm_${name} STATIC ${sources})
    target_compile_options(tm_${name} PRIVATE ${TIDEMARK_WARNINGS})
    set(scope PUBLIC)
  else()  # headers only
    add_library(tm_${name} INTERFACE)
    set(scope INTERFACE)
  endif()
  target_include_directories(tm_${name} ${scope} ${root})
  foreach(dep ${M_USES})
    string(REPLACE "/" "_" dep_name ${dep})
    target_link_libraries(tm_${name} ${scope} tm_${dep_name})
  endforeach()
  target_link_libraries(tm_${name} ${scope} ${M_LIBS})
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
