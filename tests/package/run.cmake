# Installs the already-built ckpt into WORK_DIR/prefix, then configures, builds and runs the
# downstream project in DOWNSTREAM_SOURCE_DIR against it; with CKPT_SOURCE_DIR set, the downstream
# project builds ckpt from that source tree itself instead. Any failing step fails the test.
function(run_step)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "step failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  message(STATUS "${out}")
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
if(DEFINED CKPT_SOURCE_DIR)
  # The downstream project builds ckpt from source (FetchContent / add_subdirectory).
  run_step(${CMAKE_COMMAND} -S ${DOWNSTREAM_SOURCE_DIR} -B ${WORK_DIR}/build -G ${GENERATOR}
           -DCKPT_SOURCE_DIR=${CKPT_SOURCE_DIR} -DCMAKE_BUILD_TYPE=Release)
else()
  run_step(${CMAKE_COMMAND} --install ${CKPT_BINARY_DIR} --prefix ${WORK_DIR}/prefix)
  run_step(${CMAKE_COMMAND} -S ${DOWNSTREAM_SOURCE_DIR} -B ${WORK_DIR}/build -G ${GENERATOR}
           -DCMAKE_PREFIX_PATH=${WORK_DIR}/prefix)
endif()
run_step(${CMAKE_COMMAND} --build ${WORK_DIR}/build)
run_step(${WORK_DIR}/build/downstream)
