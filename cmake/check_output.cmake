# Runs PROGRAM and passes only if it exits 0 and its stdout matches
# EXPECT_REGEX (ctest's PASS_REGULAR_EXPRESSION alone ignores the exit code).
#   cmake -DPROGRAM=<exe> [-DARGS=<args>] -DEXPECT_REGEX=<regex> -P check_output.cmake
separate_arguments(args UNIX_COMMAND "${ARGS}")
execute_process(COMMAND "${PROGRAM}" ${args}
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
message("${out}${err}")
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} exited with ${rc}")
endif()
if(NOT out MATCHES "${EXPECT_REGEX}")
  message(FATAL_ERROR "stdout does not match: ${EXPECT_REGEX}")
endif()
