# Runs as `cmake -P` with MEDLOAD and MEDLOAD_TORCH: fails when medload would load libtorch or
# libc10, or when medload-torch would not (then the pattern below no longer finds them).
set(torch_pattern "(^|[ \t/])lib(torch|c10)[^ \t/]*\\.so")

function(libraries_of out)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE stdout ERROR_VARIABLE stderr)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${ARGN} failed (${rc}):\n${stdout}\n${stderr}")
  endif()
  set(${out} "${stdout}\n${stderr}" PARENT_SCOPE)
endfunction()

libraries_of(listed ldd "${MEDLOAD}")
if(listed MATCHES "${torch_pattern}")
  message(FATAL_ERROR "ldd ${MEDLOAD} lists ${CMAKE_MATCH_0}; medload must load no LibTorch:\n${listed}")
endif()

# What the dynamic loader really opens (dlopen included) for the commands that touch no tensor.
foreach(args "--version" "scan;--help" "preview;--help")
  libraries_of(opened ${CMAKE_COMMAND} -E env LD_DEBUG=libs "${MEDLOAD}" ${args})
  string(REGEX MATCHALL "calling init: [^\n]*" inits "${opened}")
  foreach(init IN LISTS inits)
    if(init MATCHES "${torch_pattern}")
      message(FATAL_ERROR "medload ${args} loads ${init}; medload must load no LibTorch")
    endif()
  endforeach()
endforeach()

libraries_of(torch_listed ldd "${MEDLOAD_TORCH}")
if(NOT torch_listed MATCHES "${torch_pattern}")
  message(FATAL_ERROR "ldd ${MEDLOAD_TORCH} lists no libtorch: the check above cannot see it:\n${torch_listed}")
endif()
message(STATUS "medload loads no LibTorch; medload-torch does")
