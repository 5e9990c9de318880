include_guard(GLOBAL)
include(${CMAKE_CURRENT_LIST_DIR}/WagerPublicHeaders.cmake)

# Compile settings shared by every Wager target: warnings, sanitizers.
function(wager_target_defaults target)
  target_compile_features(${target} PUBLIC cxx_std_20)
  # -Wno-array-bounds, -Wno-stringop-overflow: GCC 12 reports false positives inside inlined
  # std::string moves (GCC bug 105329), e.g. in CAF's add_message_type.
  # -Wno-restrict: at -O3 GCC 12 reports one inside std::string's replace and
  # insert (GCC bug 105651), e.g. in actors/odds.cpp.
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wno-missing-field-initializers -Wno-array-bounds -Wno-stringop-overflow
    -Wno-restrict)
  # Sanitizer instrumentation makes GCC 12's -Wmaybe-uninitialized report
  # false positives inside CAF's optional<T> (CAF 0.17 headers).
  if(WAGER_SANITIZE)
    target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized)
  endif()
  if(WAGER_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# WAGER_TEMPLATE_HEAVY_OPTIONS (the top-level CMakeLists.txt) for a whole
# target, or for some of its sources. Sources so marked skip the target's
# precompiled header, which was compiled with the other options (GCC refuses
# a header built at another -O level).
function(wager_template_heavy target)
  if(NOT WAGER_TEMPLATE_HEAVY_OPTIONS)
    return()
  endif()
  if(ARGN)
    set_source_files_properties(${ARGN} TARGET_DIRECTORY ${target} PROPERTIES
      COMPILE_OPTIONS "${WAGER_TEMPLATE_HEAVY_OPTIONS}" SKIP_PRECOMPILE_HEADERS ON)
  else()
    target_compile_options(${target} PRIVATE ${WAGER_TEMPLATE_HEAVY_OPTIONS})
  endif()
endfunction()

# A library for one top-level folder: wager_<name>, alias wager::<name>.
# Sources are the folder's .cpp files; its public headers
# (WagerPublicHeaders.cmake) install under include/wager/<name>/, the others
# stay in the build tree.
function(wager_folder_library name)
  cmake_parse_arguments(arg "" "" "DEPENDS" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.cpp)
  file(GLOB headers CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.hpp)
  if(sources)
    add_library(wager_${name} ${sources} ${headers})
    set(scope PUBLIC)
    wager_target_defaults(wager_${name})
    target_precompile_headers(wager_${name} PRIVATE <caf/all.hpp>)
  else()
    # A folder whose code is all headers so far.
    add_library(wager_${name} INTERFACE)
    set(scope INTERFACE)
    target_compile_features(wager_${name} INTERFACE cxx_std_20)
  endif()
  target_include_directories(wager_${name} ${scope}
    $<BUILD_INTERFACE:${WAGER_INCLUDE_ROOT}>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  target_link_libraries(wager_${name} ${scope} ${arg_DEPENDS})
  add_library(wager::${name} ALIAS wager_${name})
  set_target_properties(wager_${name} PROPERTIES EXPORT_NAME ${name})
  install(TARGETS wager_${name} EXPORT wager-targets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
  set(public_headers)
  foreach(header ${WAGER_PUBLIC_HEADERS_${name}})
    if(NOT EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/${header})
      message(FATAL_ERROR "WagerPublicHeaders.cmake names ${name}/${header}, which does not exist")
    endif()
    list(APPEND public_headers ${CMAKE_CURRENT_SOURCE_DIR}/${header})
  endforeach()
  install(FILES ${public_headers} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/wager/${name})
endfunction()

# Each test carries one ctest label (README, "Building by hand"):
#   unit     in one process, fast: `ctest -L unit` is the inner loop
#   process  starts wager-node, wagerctl or a worker as a real process
#   cluster  several nodes, real or simulated (tests/cluster, bench/cluster_quick)
#   slow     runs for long: the saga crash loop, the package test
# A doctest suite takes its folder's label unless it has one of its own; a
# folder with none stops the configure, so no test goes unlabelled.
set(WAGER_TEST_LABEL_runtime unit)
set(WAGER_TEST_LABEL_persistence unit)
set(WAGER_TEST_LABEL_persistence/multi_process process)
set(WAGER_TEST_LABEL_persistence/crash process)
set(WAGER_TEST_LABEL_persistence/power_loss process)
set(WAGER_TEST_LABEL_persistence/pg_journal process)
set(WAGER_TEST_LABEL_persistence/pg_leases process)
set(WAGER_TEST_LABEL_actors unit)
set(WAGER_TEST_LABEL_actors/saga_steps process)
set(WAGER_TEST_LABEL_actors/saga_crash slow)
set(WAGER_TEST_LABEL_gateway unit)
set(WAGER_TEST_LABEL_cluster cluster)
set(WAGER_TEST_LABEL_cluster/message_types unit)
set(WAGER_TEST_LABEL_apps process)
set(WAGER_TEST_LABEL_bench process)
set(WAGER_TEST_LABEL_scripts process)
set(WAGER_TEST_LABEL_scripts/install_deps unit)

function(wager_test_label folder name out)
  if(DEFINED WAGER_TEST_LABEL_${folder}/${name})
    set(${out} ${WAGER_TEST_LABEL_${folder}/${name}} PARENT_SCOPE)
  elseif(DEFINED WAGER_TEST_LABEL_${folder})
    set(${out} ${WAGER_TEST_LABEL_${folder}} PARENT_SCOPE)
  else()
    message(FATAL_ERROR "tests/${folder}/${name}: no ctest label (WAGER_TEST_LABEL_* in cmake/WagerTargets.cmake)")
  endif()
endfunction()

# ctest -j starts the tests of higher COST first. A fresh build tree has no
# timings of earlier runs, so without a cost the suites run in the order
# they were added and the cluster tests (20 to 60 s each) come last, where
# one of them can keep a single core busy while the other waits. The costs
# are rough seconds per test of each label.
set(WAGER_TEST_COST_cluster 30)
set(WAGER_TEST_COST_slow 40)
set(WAGER_TEST_COST_process 5)
set(WAGER_TEST_COST_unit 0)
# Suites far longer than their label's other tests.
set(WAGER_TEST_COST_persistence/power_loss 50)
set(WAGER_TEST_COST_persistence/crash 20)
function(wager_test_cost folder name label out)
  if(DEFINED WAGER_TEST_COST_${folder}/${name})
    set(${out} ${WAGER_TEST_COST_${folder}/${name}} PARENT_SCOPE)
  else()
    set(${out} ${WAGER_TEST_COST_${label}} PARENT_SCOPE)
  endif()
endfunction()

# One doctest executable per tests/<folder>/<name>.test.cpp, named
# wager_<folder>_<name>_test, each TEST_CASE one ctest test "<folder>/<name>: case".
# One executable per file keeps link units small and lets ctest run files in
# parallel.
function(wager_test_suite folder)
  cmake_parse_arguments(arg "" "" "DEPENDS" ${ARGN})
  file(GLOB sources CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/*.test.cpp)
  foreach(source ${sources})
    get_filename_component(name ${source} NAME)
    string(REPLACE ".test.cpp" "" name ${name})
    set(target wager_${folder}_${name}_test)
    add_executable(${target} ${source})
    target_link_libraries(${target} PRIVATE wager_test_support ${arg_DEPENDS})
    target_precompile_headers(${target} REUSE_FROM wager_test_support)
    wager_target_defaults(${target})
    wager_template_heavy(${target})
    wager_test_label(${folder} ${name} label)
    wager_test_cost(${folder} ${name} ${label} cost)
    doctest_discover_tests(${target}
      TEST_PREFIX "${folder}/${name}: "
      PROPERTIES TIMEOUT 300 LABELS ${label} COST ${cost})
  endforeach()
endfunction()
