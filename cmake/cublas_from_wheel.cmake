# cuBLAS for a toolkit that has none (a compiler-only install next to PyTorch): take it from
# NVIDIA's pip wheel that PyTorch brings (nvidia/cu13 for CUDA 13, nvidia/cublas for CUDA 12), as
# the imported target CUDA::cublas that FindCUDAToolkit would have made. Only if its major version
# is the toolkit's. Only the cuBLAS headers are used, copied into a folder of their own: the CUDA 13
# wheel's include/ also holds copies of the runtime headers, which must not shadow the toolkit's.
# Input: _wheel_roots (cmake/nvidia_wheel_roots.py). Does nothing when CUDA::cublas exists.
if(TARGET CUDA::cublas OR NOT CUDAToolkit_FOUND OR NOT _wheel_roots)
  return()
endif()
find_path(DRNET_WHEEL_CUBLAS_INCLUDE cublas_api.h HINTS ${_wheel_roots} PATH_SUFFIXES include NO_DEFAULT_PATH)
find_library(DRNET_WHEEL_CUBLAS_LIBRARY NAMES libcublas.so.${CUDAToolkit_VERSION_MAJOR} cublas NAMES_PER_DIR
             HINTS ${_wheel_roots} PATH_SUFFIXES lib NO_DEFAULT_PATH)
if(NOT DRNET_WHEEL_CUBLAS_INCLUDE OR NOT DRNET_WHEEL_CUBLAS_LIBRARY)
  return()
endif()
file(STRINGS "${DRNET_WHEEL_CUBLAS_INCLUDE}/cublas_api.h" _major REGEX "^#define CUBLAS_VER_MAJOR +[0-9]+")
string(REGEX REPLACE ".* ([0-9]+)$" "\\1" _major "${_major}")
if(NOT _major STREQUAL CUDAToolkit_VERSION_MAJOR)
  message(STATUS "cuBLAS: the toolkit has none, and the wheel's (${_major}) is not for CUDA ${CUDAToolkit_VERSION_MAJOR}")
  return()
endif()
set(_here "${CMAKE_BINARY_DIR}/wheel-cublas")
file(GLOB _headers "${DRNET_WHEEL_CUBLAS_INCLUDE}/cublas*.h")
file(COPY ${_headers} DESTINATION "${_here}/include")
# The libraries are linked through a folder holding only them: the wheel's lib/ also has a
# libcudart, and a run path holding two CUDA runtimes is what CMake rightly warns about.
get_filename_component(_lib_dir "${DRNET_WHEEL_CUBLAS_LIBRARY}" DIRECTORY)
file(GLOB _libs "${_lib_dir}/libcublas*.so*")
file(MAKE_DIRECTORY "${_here}/lib")
foreach(_lib ${_libs})
  get_filename_component(_name "${_lib}" NAME)
  file(CREATE_LINK "${_lib}" "${_here}/lib/${_name}" SYMBOLIC)
endforeach()
get_filename_component(_name "${DRNET_WHEEL_CUBLAS_LIBRARY}" NAME)
add_library(CUDA::cublas SHARED IMPORTED)
set_target_properties(CUDA::cublas PROPERTIES IMPORTED_LOCATION "${_here}/lib/${_name}"
                      INTERFACE_INCLUDE_DIRECTORIES "${_here}/include")
message(STATUS "cuBLAS: the toolkit has none; using PyTorch's wheel (${DRNET_WHEEL_CUBLAS_LIBRARY})")
