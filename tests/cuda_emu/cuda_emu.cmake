# -DDRNET_CUDA_EMU=ON (included by the top-level CMakeLists.txt): the CUDA backend compiled as C++ and
# linked against the CPU emulator in this folder instead of the CUDA runtime, cuDNN and cuBLAS, so
# that the GPU tests and `train --device cuda` run on a machine without a GPU. Needs only the CUDA
# and cuDNN headers. A build for tests: use its own build directory (README: "Testing").
find_package(CUDAToolkit QUIET)
find_path(DRNET_EMU_CUDA_INCLUDE cuda_runtime.h HINTS ${CUDAToolkit_INCLUDE_DIRS} /usr/local/cuda/include)
find_path(CUDNN_INCLUDE_DIR cudnn.h HINTS ${CUDNN_ROOT} $ENV{CUDNN_ROOT} ${CUDAToolkit_INCLUDE_DIRS}
          /usr/local/cuda/include PATH_SUFFIXES include)
if(NOT DRNET_EMU_CUDA_INCLUDE OR NOT CUDNN_INCLUDE_DIR)
  message(FATAL_ERROR "DRNET_CUDA_EMU needs the CUDA and cuDNN headers (cuda_runtime.h: "
                      "'${DRNET_EMU_CUDA_INCLUDE}', cudnn.h: '${CUDNN_INCLUDE_DIR}')")
endif()
enable_language(CXX)
message(STATUS "CUDA backend: emulated on the CPU (tests/cuda_emu; headers from ${DRNET_EMU_CUDA_INCLUDE})")

# drnet_emu_sources(OUT a.cu b.cu ...): the C++ versions of CUDA sources (tests/cuda_emu/convert.cmake).
function(drnet_emu_sources out)
  set(cpps "")
  foreach(src ${ARGN})
    get_filename_component(src ${src} ABSOLUTE BASE_DIR ${PROJECT_SOURCE_DIR})
    get_filename_component(name ${src} NAME_WE)
    set(cpp ${CMAKE_BINARY_DIR}/cuda_emu/${name}.cpp)
    add_custom_command(OUTPUT ${cpp}
                       COMMAND ${CMAKE_COMMAND} -DIN=${src} -DOUT=${cpp} -P ${PROJECT_SOURCE_DIR}/tests/cuda_emu/convert.cmake
                       DEPENDS ${src} ${PROJECT_SOURCE_DIR}/tests/cuda_emu/convert.cmake VERBATIM)
    # The converted file sees the emulated thread model, and its quoted includes resolve from the
    # original's folder (and kernels/cuda, for the backend's headers).
    get_filename_component(dir ${src} DIRECTORY)
    set_source_files_properties(${cpp} PROPERTIES
      COMPILE_OPTIONS "-include;${PROJECT_SOURCE_DIR}/tests/cuda_emu/emu_kernel.h"
      INCLUDE_DIRECTORIES "${dir};${PROJECT_SOURCE_DIR}/kernels/cuda")
    list(APPEND cpps ${cpp})
  endforeach()
  set(${out} ${cpps} PARENT_SCOPE)
endfunction()

file(GLOB _emu_cu CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/kernels/cuda/*.cu)
list(FILTER _emu_cu EXCLUDE REGEX "cuda_nccl\\.cu$") # one process: no NCCL
drnet_emu_sources(_emu_cpp ${_emu_cu})
add_library(drnet_cuda STATIC ${_emu_cpp} kernels/cuda/cuda_table.c tests/cuda_emu/emu_runtime.cpp
                              tests/cuda_emu/emu_cudnn.cpp tests/cuda_emu/emu_cublas.cpp)
set_target_properties(drnet_cuda PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
target_include_directories(drnet_cuda PRIVATE ${PROJECT_SOURCE_DIR} ${PROJECT_SOURCE_DIR}/tests/cuda_emu
                           PUBLIC ${DRNET_EMU_CUDA_INCLUDE} ${CUDNN_INCLUDE_DIR})
# No fused multiply-add contraction: the __fmul_rn/__fadd_rn the kernels rely on stay separate roundings.
target_compile_options(drnet_cuda PRIVATE -ffp-contract=off -Wall -Wextra -Wno-unused-parameter)
target_compile_definitions(drnet PUBLIC WITH_CUDA DRNET_CUDA_EMU)
target_link_libraries(drnet PUBLIC drnet_cuda)
