# Runs as `cmake -P`: install medload, build the consumer against it, run the consumer.
file(REMOVE_RECURSE "${WORK_DIR}")
set(prefix "${WORK_DIR}/prefix")

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "command failed (${rc}): ${ARGN}\n${out}\n${err}")
  endif()
  set(last_output "${out}" PARENT_SCOPE)
endfunction()

run(${CMAKE_COMMAND} --install "${MEDLOAD_BINARY_DIR}" --prefix "${prefix}")
run(${CMAKE_COMMAND} -S "${CONSUMER_SOURCE_DIR}" -B "${WORK_DIR}/build" -G "${GENERATOR}"
    "-DCMAKE_PREFIX_PATH=${prefix}" -DCMAKE_BUILD_TYPE=Release "-DCMAKE_CXX_FLAGS=${CONSUMER_FLAGS}"
    "-DCMAKE_EXE_LINKER_FLAGS=${CONSUMER_FLAGS}")
run(${CMAKE_COMMAND} --build "${WORK_DIR}/build")
run("${WORK_DIR}/build/consumer")
if(NOT last_output MATCHES "medload [0-9]+\\.[0-9]+\\.[0-9]+ ok")
  message(FATAL_ERROR "unexpected consumer output: ${last_output}")
endif()
message(STATUS "consumer said: ${last_output}")

# The installed command: medload itself (torch-free) and, through it, medload-torch, which it
# finds in libexec/medload and which finds the installed libraries through its RPATH.
run("${prefix}/bin/medload" --version)
file(WRITE "${WORK_DIR}/labels.csv" "label,patient_id\n0,p1\n1,p2\n0,p3\n1,p4\n")
run("${prefix}/bin/medload" sample --labels "${WORK_DIR}/labels.csv" --sampler weighted --split all)
if(NOT last_output MATCHES "4 labelled samples")
  message(FATAL_ERROR "unexpected output of the installed `medload sample`: ${last_output}")
endif()
message(STATUS "installed medload sample (through medload-torch) said: ${last_output}")
