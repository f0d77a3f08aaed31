# Helpers shared by every medload target.

# medload_set_warnings(target): our own code is warning-free at -Wall -Wextra.
function(medload_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wno-unused-parameter)
endfunction()

# medload_add_library(name ALIAS alias SOURCES ... [PUBLIC_LIBS ...] [PRIVATE_LIBS ...])
# One library per component, with its alias, public headers under include/, installed and exported.
function(medload_add_library name)
  cmake_parse_arguments(ARG "" "ALIAS;INCLUDE_DIR" "SOURCES;PUBLIC_LIBS;PRIVATE_LIBS" ${ARGN})
  add_library(${name} ${ARG_SOURCES})
  add_library(${ARG_ALIAS} ALIAS ${name})
  if(NOT ARG_INCLUDE_DIR)
    set(ARG_INCLUDE_DIR "${CMAKE_CURRENT_SOURCE_DIR}/include")
  endif()
  target_include_directories(${name} PUBLIC
    $<BUILD_INTERFACE:${ARG_INCLUDE_DIR}>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(${name} PUBLIC ${ARG_PUBLIC_LIBS} PRIVATE ${ARG_PRIVATE_LIBS})
  target_compile_features(${name} PUBLIC cxx_std_17)
  medload_set_warnings(${name})
  set_target_properties(${name} PROPERTIES VERSION ${PROJECT_VERSION} SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
  install(TARGETS ${name} EXPORT medloadTargets
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
endfunction()

# medload_install_headers(dir): installs a component's include/ tree (call once per include dir).
function(medload_install_headers dir)
  install(DIRECTORY "${dir}/" DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.h")
endfunction()

# medload_add_test(name SOURCES a_test.cpp b_test.cpp LIBS medload::x)
# One GoogleTest executable; each TEST becomes a ctest test (discovered when ctest runs), labelled
# with the executable's name (so `ctest -L medload_loader_ingest_tests` runs one suite) and LABELS.
# Tests find committed fixtures through MEDLOAD_FIXTURES_DIR and the fetched real corpus through
# MEDLOAD_CORPUS_DIR (scripts/fetch_corpus.sh fills it).
function(medload_add_test name)
  cmake_parse_arguments(ARG "" "TIMEOUT" "SOURCES;LIBS;LABELS" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 300)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} GTest::gtest GTest::gtest_main Threads::Threads)
  # Helpers every suite may use: medload_test/temp_dir.h, medload_test/command.h.
  target_include_directories(${name} PRIVATE "${PROJECT_SOURCE_DIR}/tests/common")
  target_compile_definitions(${name} PRIVATE
    MEDLOAD_FIXTURES_DIR="${PROJECT_SOURCE_DIR}/tests/fixtures"
    MEDLOAD_CORPUS_DIR="${PROJECT_SOURCE_DIR}/data/corpus"
    MEDLOAD_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    MEDLOAD_BINARY_DIR="${PROJECT_BINARY_DIR}")
  medload_set_warnings(${name})
  include(GoogleTest)
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 120
    PROPERTIES TIMEOUT ${ARG_TIMEOUT} LABELS "${ARG_LABELS};${name}")
endfunction()

# medload_add_benchmark(module SOURCES ... LIBS ...): the Google Benchmark suite
# medload_bench_<module>, so --benchmark_format=json and --benchmark_filter work on every suite.
function(medload_add_benchmark module)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(medload_bench_${module} ${ARG_SOURCES})
  target_link_libraries(medload_bench_${module} PRIVATE ${ARG_LIBS} benchmark::benchmark benchmark::benchmark_main Threads::Threads)
  target_compile_definitions(medload_bench_${module} PRIVATE
    MEDLOAD_CORPUS_DIR="${PROJECT_SOURCE_DIR}/data/corpus")
  medload_set_warnings(medload_bench_${module})
endfunction()

# medload_add_subdirectory_if_present(dir): components that are still being written join the
# build when their CMakeLists.txt exists.
macro(medload_add_subdirectory_if_present dir)
  if(EXISTS "${CMAKE_CURRENT_SOURCE_DIR}/${dir}/CMakeLists.txt")
    add_subdirectory(${dir})
  endif()
endmacro()
