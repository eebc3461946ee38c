# The test suite, included by the top-level CMakeLists.txt (drnet_test builds tests/<name>.c).
#
# Plain `ctest` runs in a few minutes on 2 cores. The long comparisons (PyTorch twins, whole-trainer
# runs, a minute of fuzzing each) are labelled `slow` and skip, saying so, unless DRNET_SLOW_TESTS=1:
#   DRNET_SLOW_TESTS=1 ctest --test-dir build            # everything (.ci/run does this)
#   DRNET_SLOW_TESTS=1 ctest --test-dir build -L slow    # only the slow ones
# A slow test's command starts with ${DRNET_SLOW} SECONDS (tests/slow.sh: the gate, and the time it
# takes on an idle 2-core machine, for its skip message; other jobs on the cores multiply it, up to
# tenfold for the 2-thread runs).
set(DRNET_SLOW bash ${PROJECT_SOURCE_DIR}/tests/slow.sh)
# After the tests ctest prints each skipped test with the reason it gave (tests/skip_summary.sh;
# ctest itself lists only the names).
file(WRITE ${CMAKE_BINARY_DIR}/CTestCustom.cmake
     "set(CTEST_CUSTOM_POST_TEST \"bash ${PROJECT_SOURCE_DIR}/tests/skip_summary.sh ${CMAKE_BINARY_DIR}/Testing/Temporary/LastTest.log\")\n")
add_library(drnet_testutil STATIC tests/test_util.c tests/op_cases.c tests/op_compare.c tests/parity_kinds.c)
target_link_libraries(drnet_testutil PUBLIC drnet)
link_libraries(drnet_testutil)

drnet_test(test_gradcheck)
drnet_test(test_data TIMEOUT 300)
drnet_test(test_augment TIMEOUT 300)
drnet_test(test_depthwise)
# The same finite differences and depthwise checks on the CPU backend's portable kernels
# (DRNET_CPU_ISA=generic): the k x k lowering's plain-loop copies, which CPUs without AVX-512 run and
# the default runs above never reach on an AVX-512 machine.
foreach(t test_gradcheck test_depthwise)
  add_test(NAME ${t}_portable COMMAND ${t} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(${t}_portable PROPERTIES SKIP_RETURN_CODE 77
                       ENVIRONMENT "DRNET_CPU_ISA=generic;CIFAR10_PATH=${CIFAR10_PATH};OMP_NUM_THREADS=2")
endforeach()
drnet_test(test_bn_sgd)
drnet_test(test_checkpoint)
drnet_test(test_profile)
# The model interface and registry (models/model.h) against MobileNet's own functions.
drnet_test(test_model)
# The data set interface and registry (data/dataset.h) against CIFAR-10's own constants.
drnet_test(test_dataset)
drnet_test(test_overfit TIMEOUT 600)
drnet_test(test_resume ARGS $<TARGET_FILE:train> cpu TIMEOUT 600)
# The benchmarks' flags: bad values exit 2 naming the flag and the value.
add_test(NAME test_bench_cli COMMAND bash ${PROJECT_SOURCE_DIR}/tests/test_bench_cli.sh $<TARGET_FILE:bench-cpu>
         $<TARGET_FILE:bench-depthwise> $<TARGET_FILE:bench-gemm>)
set_tests_properties(test_bench_cli PROPERTIES TIMEOUT 120)
add_test(NAME test_cli COMMAND bash ${PROJECT_SOURCE_DIR}/tests/test_cli.sh $<TARGET_FILE:train>)
set_tests_properties(test_cli PROPERTIES ENVIRONMENT "CIFAR10_PATH=${CIFAR10_PATH};OMP_NUM_THREADS=2" TIMEOUT 600)
# The settings table (train/settings.c) against --help, a run's config.json and its checkpoint.
add_executable(test_settings tests/test_settings.c train/settings.c)
add_test(NAME test_settings COMMAND bash ${PROJECT_SOURCE_DIR}/tests/test_settings.sh $<TARGET_FILE:train>
         $<TARGET_FILE:test_settings>)
set_tests_properties(test_settings PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300
                     ENVIRONMENT "CIFAR10_PATH=${CIFAR10_PATH};OMP_NUM_THREADS=2")
drnet_test(test_gemm)
# The bf16 GEMM: its rounding, and every bf16 kernel against a reference that rounds the same way.
drnet_test(test_gemm_bf16)
# The reference backend's bf16 mode, the oracle of the bf16 CPU kernels: what it rounds, and by how much.
drnet_test(test_bf16_ref)
# The CPU k x k convolutions in bf16: planes rounded as they are copied, bit for bit FP32 on rounded operands.
drnet_test(test_conv_flat_bf16)
# Activations stored in bf16 where only convolutions read them: bit for bit what FP32 storage gives.
drnet_test(test_bf16_activations)
# A bf16 training step against PyTorch: our semantics emulated there, and torch.autocast.
drnet_test(test_parity_bf16)
# CPU benchmarks (bench/): GEMM against the measured peak, and the training step against PyTorch.
add_executable(bench-gemm bench/bench_gemm.c train/args.c)
target_link_libraries(bench-gemm PRIVATE drnet)
drnet_test(test_cuda_ops)
drnet_test(test_parity ARGS cpu)
# The reference backend (kernels/ref) meets the same PyTorch bounds as the tuned one.
drnet_test(test_parity_ref SOURCES tests/test_parity.c ARGS ref)
# The same reference at the CPU's default g = 1 and at --dw-group 5 (odd groups of 3 and 5 channels).
drnet_test(test_parity_g1 SOURCES tests/test_parity.c ARGS cpu --dw-group 1)
drnet_test(test_parity_g5 SOURCES tests/test_parity.c ARGS cpu --dw-group 5)
drnet_test(test_parity_cuda SOURCES tests/test_parity.c ARGS cuda --tf32 off)
drnet_test(test_parity_cuda_tf32 SOURCES tests/test_parity.c ARGS cuda --tf32 on)
# MobileNetV2, the second model (its own reference, 2 steps at width 0.125): the tuned CPU at the
# paper's g = 32, the reference backend (slow: 128 s measured with other jobs on the two cores), and
# CUDA with TF32 off.
set(DRNET_PARITY_V2 --ref ${PROJECT_SOURCE_DIR}/tests/reference/parity_mobilenetv2_w0.125_b16.bin
    --eval-ref ${PROJECT_SOURCE_DIR}/tests/reference/parity_eval_mobilenetv2_w0.125_b16.bin)
add_test(NAME test_parity_v2 COMMAND test_parity cpu ${DRNET_PARITY_V2} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
add_test(NAME test_parity_v2_ref COMMAND ${DRNET_SLOW} 60 $<TARGET_FILE:test_parity_ref> ref ${DRNET_PARITY_V2}
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(test_parity_v2 test_parity_v2_ref PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600
                     ENVIRONMENT "CIFAR10_PATH=${CIFAR10_PATH};OMP_NUM_THREADS=2")
set_tests_properties(test_parity_v2_ref PROPERTIES LABELS slow)
drnet_test(test_parity_v2_cuda SOURCES tests/test_parity.c ARGS cuda --tf32 off ${DRNET_PARITY_V2})
# The default choice of ./train (cuDNN's timed search over every algorithm, FFT and Winograd
# included) against the reference, with bounds that hold for any algorithm (test_parity.c says why).
add_test(NAME test_parity_cuda_any COMMAND test_parity_cuda cuda --tf32 off --measured --bounds any-algorithm
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(test_parity_cuda_any PROPERTIES SKIP_RETURN_CODE 77
                     ENVIRONMENT "CIFAR10_PATH=${CIFAR10_PATH};OMP_NUM_THREADS=2;DRNET_CUDNN_ALGOS=all")
# The GPU resume: bit-identical with --deterministic (test_resume.c says why).
drnet_test(test_resume_cuda SOURCES tests/test_resume.c ARGS $<TARGET_FILE:train> cuda TIMEOUT 600)
# GPU: --gpu-data batches == the loader's, graph replay == eager, no allocation or sync in a
# steady-state step (skipped without a GPU); links the trainer's own step code.
drnet_test(test_cuda_speed SOURCES tests/test_cuda_speed.c tests/graph_emu.c train/step.c train/speed.c
           train/state.c train/settings.c train/dist.c TIMEOUT 300)
# The same CUDA-vs-CPU comparisons with the one-block-per-channel batch-norm kernels (the default
# splits the statistics over many blocks; DRNET_CUDA_BN_SPLIT=0 keeps the older kernels, still used
# for shapes the split does not take).
add_test(NAME test_cuda_ops_bn_block COMMAND test_cuda_ops --quick WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(test_cuda_ops_bn_block PROPERTIES SKIP_RETURN_CODE 77 LABELS gpu TIMEOUT 300
                     ENVIRONMENT "DRNET_CUDA_BN_SPLIT=0;CIFAR10_PATH=${CIFAR10_PATH};OMP_NUM_THREADS=2")
# The bf16 part on cuDNN's bf16 tensors in all three directions (DRNET_CUDA_BF16_DIRS; by default
# bf16-valued operands go through the FP32 kernels), its results rounded to bf16 as the reference is told to.
add_test(NAME test_cuda_ops_bf16_tensors COMMAND test_cuda_ops WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(test_cuda_ops_bf16_tensors PROPERTIES SKIP_RETURN_CODE 77 LABELS gpu TIMEOUT 300
                     ENVIRONMENT "DRNET_CUDA_BF16_DIRS=fwd,data,filter;CIFAR10_PATH=${CIFAR10_PATH};OMP_NUM_THREADS=2")
# The same comparisons with every 1x1 convolution as one GEMM over the batch (kernels/cuda/cuda_pointwise.cu), which
# the default (auto) takes only where it measured faster than cuDNN: forced here, so that its three
# directions are checked whatever the timings, the MobileNet steps included.
add_test(NAME test_cuda_ops_pointwise COMMAND test_cuda_ops WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(test_cuda_ops_pointwise PROPERTIES SKIP_RETURN_CODE 77 LABELS gpu TIMEOUT 300
                     ENVIRONMENT "DRNET_CUDA_POINTWISE=gemm;CIFAR10_PATH=${CIFAR10_PATH};OMP_NUM_THREADS=2")
add_executable(bench-cpu bench/bench_cpu.c train/args.c)
target_link_libraries(bench-cpu PRIVATE drnet)
# Weight exchange with PyTorch both ways (skipped without /usr/bin/python3 + torch, or without data).
add_test(NAME test_exchange COMMAND ${DRNET_SLOW} 35 bash ${PROJECT_SOURCE_DIR}/tests/test_exchange.sh $<TARGET_FILE:train>)
set_tests_properties(test_exchange PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 900
                     ENVIRONMENT "CIFAR10_PATH=${CIFAR10_PATH};OMP_NUM_THREADS=2")
# ./train and its PyTorch twin see the same batches and follow the same recipe (skipped like test_exchange).
add_test(NAME test_twin_torch COMMAND ${DRNET_SLOW} 25 bash ${PROJECT_SOURCE_DIR}/tests/test_twin_torch.sh $<TARGET_FILE:train>)
set_tests_properties(test_twin_torch PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600
                     ENVIRONMENT "CIFAR10_PATH=${CIFAR10_PATH};OMP_NUM_THREADS=2")
drnet_test(test_crafted TIMEOUT 120)
# Failures leave a valid run: crafted checkpoints, early path checks, NaN/Inf stops, --log errors.
drnet_test(test_guard ARGS $<TARGET_FILE:train> TIMEOUT 300)
# Fuzzing: each harness runs for DRNET_FUZZ_SECONDS under libFuzzer when clang is there (the
# checkpoint reader must reach 100k executions), else replays its corpus; the sanitizer build only
# replays (under ASan and UBSan). DRNET_FUZZ_SECONDS=0 in the environment replays only.
set(DRNET_FUZZ_SECONDS 60 CACHE STRING "Seconds each fuzz harness runs in ctest (0: replay the corpus)")
foreach(h cifar10 checkpoint)
  add_executable(fuzz_replay_${h} tests/fuzz/fuzz_${h}.c tests/fuzz/replay_main.c)
  target_link_libraries(fuzz_replay_${h} PRIVATE drnet)
  if(DRNET_SANITIZE)
    set(_seconds 0)
  else()
    set(_seconds ${DRNET_FUZZ_SECONDS})
  endif()
  if(h STREQUAL checkpoint)
    set(_min 100000)
  else()
    set(_min 1000)
  endif()
  # The corpus replay in every run; the timed fuzzing (a minute each) with the slow tests.
  add_test(NAME fuzz_${h}_replay COMMAND bash ${PROJECT_SOURCE_DIR}/tests/fuzz/run_fuzz.sh ${h} 0 ${_min}
           $<TARGET_FILE:fuzz_replay_${h}> ${CMAKE_BINARY_DIR}/fuzz-replay)
  set_tests_properties(fuzz_${h}_replay PROPERTIES TIMEOUT 300)
  if(NOT _seconds EQUAL 0)
    add_test(NAME fuzz_${h} COMMAND ${DRNET_SLOW} ${_seconds} bash ${PROJECT_SOURCE_DIR}/tests/fuzz/run_fuzz.sh ${h}
             ${_seconds} ${_min} $<TARGET_FILE:fuzz_replay_${h}> ${CMAKE_BINARY_DIR}/fuzz)
    set_tests_properties(fuzz_${h} PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300 LABELS slow)
  endif()
endforeach()
# kill -9 at several moments (also mid-save): the checkpoint is always the old or the new one.
drnet_test(test_kill ARGS $<TARGET_FILE:train> TIMEOUT 400)
# Data parallelism: 2 MPI processes against --accum-steps 2 (skipped in a build without MPI), and the
# NCCL path on one GPU (skipped without a GPU).
if(DRNET_MPI)
  set(DRNET_TEST_MPIEXEC ${MPIEXEC_EXECUTABLE})
else()
  set(DRNET_TEST_MPIEXEC none)
endif()
drnet_test(test_dist_mpi SOURCES tests/test_dist.c ARGS mpi $<TARGET_FILE:train> ${DRNET_TEST_MPIEXEC} TIMEOUT 600)
drnet_test(test_dist_nccl SOURCES tests/test_dist.c ARGS nccl $<TARGET_FILE:train> TIMEOUT 600)
# The progress line's ETAs (no data needed).
drnet_test(test_progress SOURCES tests/test_progress.c train/progress.c train/step.c train/state.c train/settings.c train/dist.c
           train/speed.c)
# Gradient accumulation through train_step against the big batch's gradient (no data needed).
drnet_test(test_accum SOURCES tests/test_accum.c train/step.c train/state.c train/settings.c train/dist.c train/speed.c)

# --gpu-data / --cuda-graph / --bench-steps on the CPU (skipped without the data or numpy).
add_test(NAME test_speed COMMAND ${DRNET_SLOW} 5 bash ${PROJECT_SOURCE_DIR}/tests/test_speed.sh $<TARGET_FILE:train>)
set_tests_properties(test_speed PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600
                     ENVIRONMENT "CIFAR10_PATH=${CIFAR10_PATH};OMP_NUM_THREADS=2")
add_test(NAME test_cuda_speed_cpu COMMAND ${DRNET_SLOW} 5 $<TARGET_FILE:test_cuda_speed> --dry-run-cpu
         WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(test_cuda_speed_cpu PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600 ENVIRONMENT "CIFAR10_PATH=${CIFAR10_PATH};OMP_NUM_THREADS=2")

# Run directories: what a run keeps, what --resume restores, the log's overwrite/append rule.
add_test(NAME test_rundir COMMAND ${DRNET_SLOW} 25 bash ${PROJECT_SOURCE_DIR}/tests/test_rundir.sh $<TARGET_FILE:train>)
set_tests_properties(test_rundir PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600
                     ENVIRONMENT "CIFAR10_PATH=${CIFAR10_PATH};OMP_NUM_THREADS=2")
# tools/export.py: PyTorch and ONNX exports predict as ./train does (skipped without torch or data).
add_test(NAME test_export COMMAND ${DRNET_SLOW} 25 bash ${PROJECT_SOURCE_DIR}/tests/test_export.sh $<TARGET_FILE:train>)
set_tests_properties(test_export PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600
                     ENVIRONMENT "CIFAR10_PATH=${CIFAR10_PATH};OMP_NUM_THREADS=2")
# tools/plot_runs.py on hand-written logs (skipped without matplotlib).
add_test(NAME test_plot COMMAND bash ${PROJECT_SOURCE_DIR}/tests/test_plot.sh /usr/bin/python3)
set_tests_properties(test_plot PROPERTIES SKIP_RETURN_CODE 77)
# The user tools on a Python without PyTorch, numpy or matplotlib: a one-line error, no traceback.
add_test(NAME test_tools_deps COMMAND bash ${PROJECT_SOURCE_DIR}/tests/test_tools_deps.sh python3)
set_tests_properties(test_tools_deps PROPERTIES SKIP_RETURN_CODE 77)
# tests/skip_summary.sh (each skip's reason after the run) and tests/slow.sh (the slow tests' gate).
add_test(NAME test_skip_summary COMMAND bash ${PROJECT_SOURCE_DIR}/tests/test_skip_summary.sh ${CMAKE_CTEST_COMMAND})
# tests/device/lib.sh, the GPU session's decisions (tools off PATH, no data, a skip is no pass,
# PyTorch's library path), on fake toolkits, packages and ctest runs.
add_test(NAME test_device_lib COMMAND bash ${PROJECT_SOURCE_DIR}/tests/device/test_lib.sh ${CMAKE_CTEST_COMMAND})
# cmake/fetch_cifar10.cmake against a local file:// archive (the MD5 check, no file left on failure).
add_test(NAME test_fetch COMMAND bash ${PROJECT_SOURCE_DIR}/tests/test_fetch.sh ${CMAKE_COMMAND})
# cmake/nvidia_wheel_roots.py and cmake/nvidia_libraries.cmake: how CMake and the GPU session find
# PyTorch's cuDNN, NCCL and cuBLAS wheels, on fake toolkits and wheels.
add_test(NAME test_wheel_roots COMMAND bash ${PROJECT_SOURCE_DIR}/tests/test_wheel_roots.sh python3 ${CMAKE_COMMAND})
set_tests_properties(test_wheel_roots PROPERTIES SKIP_RETURN_CODE 77)

# Every test in this file that needs a GPU: the device script builds and runs exactly these, with
# DRNET_REQUIRE_GPU=1 (it reads this line).
set_property(TEST test_exchange test_twin_torch test_speed test_cuda_speed_cpu test_rundir test_export
             APPEND PROPERTY LABELS slow)

set(DRNET_GPU_TESTS test_cuda_ops test_parity_cuda test_parity_cuda_tf32 test_parity_v2_cuda test_resume_cuda test_cuda_speed test_dist_nccl)
set_property(TEST ${DRNET_GPU_TESTS} test_parity_cuda_any APPEND PROPERTY LABELS gpu)
# The tests with tight FP32 bounds compare against a direct convolution's rounding: cuDNN may choose
# only GEMM-like algorithms there (DRNET_CUDNN_ALGOS=gemm, kernels/cuda/cuda_backend.cu), so that
# its ranking of FFT or Winograd for some shape cannot fail a row by rounding alone. They check that
# the filter was honoured (test_check_algo_filter); test_parity_cuda_any runs the unfiltered choice.
set_property(TEST test_cuda_ops test_cuda_ops_bn_block test_cuda_ops_pointwise test_cuda_ops_bf16_tensors test_parity_cuda test_parity_cuda_tf32 test_parity_v2_cuda
             APPEND PROPERTY ENVIRONMENT DRNET_CUDNN_ALGOS=gemm)

# With the CUDA emulator (-DDRNET_CUDA_EMU=ON): the GPU session's own commands at tiny sizes.
if(DRNET_CUDA_EMU)
  add_test(NAME test_emu_commands COMMAND bash ${PROJECT_SOURCE_DIR}/tests/cuda_emu/commands.sh
           $<TARGET_FILE:train> $<TARGET_FILE:bench-depthwise> WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(test_emu_commands PROPERTIES SKIP_RETURN_CODE 77 LABELS gpu TIMEOUT 900
                       ENVIRONMENT "CIFAR10_PATH=${CIFAR10_PATH};OMP_NUM_THREADS=2")
  # Under DRNET_REQUIRE_GPU=1 a GPU test without data fails instead of skipping.
  add_test(NAME test_emu_require_data COMMAND bash ${PROJECT_SOURCE_DIR}/tests/cuda_emu/require_data.sh
           $<TARGET_FILE:test_resume_cuda> $<TARGET_FILE:train> $<TARGET_FILE:bench-depthwise>
           WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
  set_tests_properties(test_emu_require_data PROPERTIES LABELS gpu TIMEOUT 120)
  # Seconds on a GPU, minutes here: test_cuda_speed takes about 200 s alone on 2 cores, too close to
  # the 300 s that catch a hang on a GPU when another job shares the cores.
  set_tests_properties(test_cuda_speed PROPERTIES TIMEOUT 900)
  # The kernels again with the threads of a block run in other orders between barriers: a missing
  # __syncthreads changes the result in at least one order (tests/cuda_emu/emu_runtime.cpp).
  foreach(order reverse warps)
    foreach(split 0 1)
      add_test(NAME test_emu_order_${order}_split${split} COMMAND test_cuda_ops --quick
               WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
      set_tests_properties(test_emu_order_${order}_split${split} PROPERTIES LABELS gpu TIMEOUT 300
                           ENVIRONMENT "DRNET_EMU_ORDER=${order};DRNET_CUDA_BN_SPLIT=${split};OMP_NUM_THREADS=2;DRNET_CUDNN_ALGOS=gemm")
    endforeach()
  endforeach()
endif()

# The CPU micro-kernels' code: accumulators and transposed blocks in registers, not zeroed through
# a stack array (objdump of the library; no numeric test sees this, it only costs time).
# Only GCC's optimized builds without sanitizers: that is the code the pragmas are written for.
if(CMAKE_C_COMPILER_ID STREQUAL "GNU" AND NOT DRNET_SANITIZE AND CMAKE_BUILD_TYPE MATCHES "^(Release|RelWithDebInfo)$")
  add_test(NAME test_cpu_kernel_codegen COMMAND bash ${PROJECT_SOURCE_DIR}/tests/test_cpu_kernel_codegen.sh $<TARGET_FILE:drnet>)
  set_tests_properties(test_cpu_kernel_codegen PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 60)
endif()

# The CUDA kernels' registers, shared memory and spills from ptxas (sm_90): every kernel launches at
# any block size. Needs nvcc only, no GPU.
if(DRNET_CUDA)
  add_test(NAME test_kernel_resources COMMAND ${DRNET_SLOW} 15 bash ${PROJECT_SOURCE_DIR}/tests/test_kernel_resources.sh
           ${CMAKE_CUDA_COMPILER} -I${CUDNN_INCLUDE_DIR} -I${CMAKE_BINARY_DIR}/wheel-cublas/include)
  set_tests_properties(test_kernel_resources PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300 LABELS slow)
endif()
