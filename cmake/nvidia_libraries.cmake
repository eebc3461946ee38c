# cuDNN, NCCL and (when the toolkit has none) cuBLAS for the CUDA backend, after find_package(CUDAToolkit).
# Looked for in this order: -DCUDNN_ROOT / -DNCCL_ROOT (or the environment variables), the toolkit,
# then the folders of NVIDIA's pip wheels that PyTorch brings (nvidia/cudnn, nvidia/nccl, nvidia/cu13,
# listed by nvidia_wheel_roots.py beside this file), then the system's default places.
# Sets CUDNN_INCLUDE_DIR, CUDNN_LIBRARY, NCCL_INCLUDE_DIR, NCCL_LIBRARY (NOTFOUND when absent) and,
# through cublas_from_wheel.cmake, CUDA::cublas where the toolkit has no cuBLAS.
# tests/test_wheel_roots.sh runs this file against fake toolkits and wheels.

# The wheel folders, from the python3 on PATH (the one with PyTorch, on a GPU machine).
set(_wheel_roots "")
find_program(_python3 python3)
if(_python3)
  execute_process(COMMAND ${_python3} ${CMAKE_CURRENT_LIST_DIR}/nvidia_wheel_roots.py
                  OUTPUT_VARIABLE _wheel_roots OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  string(REPLACE "\n" ";" _wheel_roots "${_wheel_roots}")
endif()

include(${CMAKE_CURRENT_LIST_DIR}/cublas_from_wheel.cmake)

# find_beside(PREFIX HEADER ROOT_VAR LIBNAMES...): PREFIX_INCLUDE_DIR and PREFIX_LIBRARY (cache
# variables). The library is taken from beside its own header first, and every folder is asked for
# all the names before the next folder (NAMES_PER_DIR): otherwise a toolkit's libcudnn.so beats a
# wheel's libcudnn.so.9 even when CUDNN_ROOT names the wheel, and the header and the library come
# from two different cuDNNs (seen with the CUDA 13 toolkit next to PyTorch 2.11's wheels).
function(find_beside prefix header root_var)
  set(hints ${${root_var}} $ENV{${root_var}} ${CUDAToolkit_LIBRARY_ROOT} ${_wheel_roots})
  find_path(${prefix}_INCLUDE_DIR ${header} HINTS ${hints} ${CUDAToolkit_INCLUDE_DIRS} PATH_SUFFIXES include)
  get_filename_component(beside "${${prefix}_INCLUDE_DIR}" DIRECTORY)
  find_library(${prefix}_LIBRARY NAMES ${ARGN} NAMES_PER_DIR HINTS ${beside} ${hints} ${CUDAToolkit_LIBRARY_DIR}
               PATH_SUFFIXES lib lib64 lib/x86_64-linux-gnu)
endfunction()

find_beside(CUDNN cudnn.h CUDNN_ROOT cudnn libcudnn.so.9)
find_beside(NCCL nccl.h NCCL_ROOT nccl libnccl.so.2) # the GPU all-reduce of multi-process training, optional
