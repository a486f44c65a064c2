# Exercises: each chapter's exercises.hpp is implemented twice,
#   chapters/<chapter>/exercises.cpp   the learner's file (stubs that throw
#                                      "not implemented yet: exercise N.k — hint")
#   chapters/<chapter>/solutions.cpp   the reference answers
# and tested by tests/exercises/test_<chapter>.cpp.
#
# DM_EXERCISES picks what the tests `exercises_<chapter>` are built against:
#   solutions (default)  solutions.cpp; the tests must pass. A second program,
#                        `exercises_<chapter>_stubs`, runs the same tests on the
#                        stubs, and every one of them must fail (WILL_FAIL): no
#                        exercise test passes without an answer.
#   mine                 exercises.cpp: the learner's own answers.
#
# ctest labels: `exercises` (the tests) and `exercises-stubs` (the stub run).
# -L takes a regex, so `ctest -L exercises` runs both (all pass by default);
# `ctest -L '^exercises$'` runs the tests alone.
include(GoogleTest)

set(DM_EXERCISES "solutions" CACHE STRING
    "Build the exercise tests against the reference `solutions` or against `mine` (exercises.cpp)")
set_property(CACHE DM_EXERCISES PROPERTY STRINGS solutions mine)
if(NOT DM_EXERCISES MATCHES "^(solutions|mine)$")
  message(FATAL_ERROR "DM_EXERCISES is `${DM_EXERCISES}`: use -DDM_EXERCISES=solutions or mine")
endif()

# _dm_exercise_tests(name chapter answers prefix label will_fail) — the chapter's
# exercise tests linked against the library `answers`, registered one ctest
# entry per test as <prefix><Suite>.<Test>.
function(_dm_exercise_tests name chapter answers prefix label will_fail)
  add_executable(${name} ${CMAKE_SOURCE_DIR}/tests/exercises/test_${chapter}.cpp)
  target_link_libraries(${name} PRIVATE ${answers} GTest::gtest GTest::gtest_main)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR}/tests/common)
  dm_warnings(${name})
  dm_use_pch(${name})
  gtest_discover_tests(${name} TEST_PREFIX "${prefix}" DISCOVERY_TIMEOUT 60
    PROPERTIES LABELS ${label} WILL_FAIL ${will_fail} TIMEOUT 60)
endfunction()

# dm_add_exercises(01_langevin)
# Builds chapters/<chapter>/exercises.cpp and solutions.cpp into the libraries
# <chapter>_exercises and <chapter>_solutions, and the tests above (only when
# GoogleTest is found).
function(dm_add_exercises chapter)
  set(dir ${CMAKE_SOURCE_DIR}/chapters/${chapter})
  foreach(answers IN ITEMS exercises solutions)
    add_library(${chapter}_${answers} STATIC ${dir}/${answers}.cpp)
    target_include_directories(${chapter}_${answers} PUBLIC ${dir})
    target_link_libraries(${chapter}_${answers} PUBLIC dm)
    dm_warnings(${chapter}_${answers})
    dm_use_pch(${chapter}_${answers})
  endforeach()
  if(NOT TARGET GTest::gtest)
    return()
  endif()
  if(DM_EXERCISES STREQUAL "mine")
    _dm_exercise_tests(exercises_${chapter} ${chapter} ${chapter}_exercises "" exercises FALSE)
  else()
    _dm_exercise_tests(exercises_${chapter} ${chapter} ${chapter}_solutions "" exercises FALSE)
    _dm_exercise_tests(exercises_${chapter}_stubs ${chapter} ${chapter}_exercises "stubs:"
                       exercises-stubs TRUE)
  endif()
endfunction()
