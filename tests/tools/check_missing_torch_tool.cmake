# Runs as `cmake -P` with MEDLOAD and WORK_DIR: a medload with no medload-torch beside it (nor in
# ../libexec/medload) still answers --help for the tensor commands, and running one fails with
# exit 1 and a message naming the command and the paths it looked at.
file(REMOVE_RECURSE "${WORK_DIR}")
file(MAKE_DIRECTORY "${WORK_DIR}/bin")
file(COPY "${MEDLOAD}" DESTINATION "${WORK_DIR}/bin")
get_filename_component(name "${MEDLOAD}" NAME)
set(alone "${WORK_DIR}/bin/${name}")
file(WRITE "${WORK_DIR}/labels.csv" "label\n0\n1\n")

execute_process(COMMAND "${alone}" sample --help RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT out MATCHES "--sampler")
  message(FATAL_ERROR "medload sample --help without medload-torch: exit ${rc}\n${out}\n${err}")
endif()

execute_process(COMMAND "${alone}" sample --labels "${WORK_DIR}/labels.csv" --sampler weighted
                RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 1)
  message(FATAL_ERROR "medload sample without medload-torch: exit ${rc}, expected 1\n${out}\n${err}")
endif()
set(expected "medload sample: error: medload-torch, which runs the commands that need LibTorch, is missing (looked for ${WORK_DIR}/bin/medload-torch, ${WORK_DIR}/libexec/medload/medload-torch)")
string(FIND "${err}" "${expected}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "medload sample without medload-torch said:\n${err}\nexpected:\n${expected}")
endif()
message(STATUS "without medload-torch: ${err}")
