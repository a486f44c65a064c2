# Runs a program made from a notebook (ctest: notebook_<name>) in a fresh,
# empty working directory, where its xcpp::display calls leave display_NNN.svg
# / .png files.
#   cmake -DPROGRAM=<build>/bin/notebook_<name> -DRUN_DIR=<dir> -P run_notebook.cmake
file(REMOVE_RECURSE ${RUN_DIR})
file(MAKE_DIRECTORY ${RUN_DIR})
execute_process(COMMAND ${PROGRAM} WORKING_DIRECTORY ${RUN_DIR} RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} failed (${status}); its working directory: ${RUN_DIR}")
endif()
file(GLOB displays ${RUN_DIR}/display_*)
list(LENGTH displays count)
message(STATUS "${count} displayed figures/images in ${RUN_DIR}")
