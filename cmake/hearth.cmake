# Helpers shared by every subsystem's CMakeLists.txt.

set(HEARTH_WARNINGS -Wall -Wextra -Wno-unused-parameter -Wno-missing-field-initializers)

# hearth_library(NAME SRCS a.cc b.cc DEPS x y)
function(hearth_library name)
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_library(${name} STATIC ${ARG_SRCS})
  target_include_directories(${name} PUBLIC ${PROJECT_SOURCE_DIR}/src ${PROJECT_SOURCE_DIR}/include)
  target_compile_options(${name} PRIVATE ${HEARTH_WARNINGS})
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
endfunction()

# hearth_test(NAME SRCS a_test.cc DEPS lib) -> one gtest binary registered with CTest.
function(hearth_test name)
  if(NOT HEARTH_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SRCS;DEPS" ${ARGN})
  add_executable(${name} ${ARG_SRCS})
  target_compile_options(${name} PRIVATE ${HEARTH_WARNINGS})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gtest GTest::gmock GTest::gtest_main)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS unit TIMEOUT 300)
endfunction()
