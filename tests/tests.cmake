# The test suite, included by the top-level CMakeLists.txt (drnet_test builds tests/<name>.c).
add_library(drnet_testutil STATIC tests/test_util.c tests/op_cases.c)
target_link_libraries(drnet_testutil PUBLIC drnet)
link_libraries(drnet_testutil)

drnet_test(test_gradcheck)
drnet_test(test_data TIMEOUT 300)
drnet_test(test_augment TIMEOUT 300)
drnet_test(test_depthwise)
drnet_test(test_bn_sgd)
drnet_test(test_checkpoint)
drnet_test(test_profile)
drnet_test(test_overfit TIMEOUT 600)
drnet_test(test_resume ARGS $<TARGET_FILE:train> cpu TIMEOUT 600)
add_test(NAME test_cli COMMAND bash ${PROJECT_SOURCE_DIR}/tests/test_cli.sh $<TARGET_FILE:train>)
set_tests_properties(test_cli PROPERTIES ENVIRONMENT "CIFAR10_PATH=${CIFAR10_PATH};OMP_NUM_THREADS=2" TIMEOUT 600)
drnet_test(test_gemm)
# CPU benchmarks (train/bench/): GEMM against the measured peak, and the training step against PyTorch.
add_executable(bench-gemm train/bench/bench_gemm.c)
target_link_libraries(bench-gemm PRIVATE drnet)
drnet_test(test_cuda_ops)
drnet_test(test_parity ARGS cpu)
drnet_test(test_parity_cuda SOURCES tests/test_parity.c ARGS cuda --tf32 off)
drnet_test(test_parity_cuda_tf32 SOURCES tests/test_parity.c ARGS cuda --tf32 on)
# The GPU resume: bit-identical with --deterministic (test_resume.c says why).
drnet_test(test_resume_cuda SOURCES tests/test_resume.c ARGS $<TARGET_FILE:train> cuda TIMEOUT 300)
# GPU: --gpu-data batches == the loader's, graph replay == eager, no allocation or sync in a
# steady-state step (skipped without a GPU); links the trainer's own step code.
drnet_test(test_cuda_speed SOURCES tests/test_cuda_speed.c tests/graph_emu.c train/step.c train/speed.c
           train/state.c TIMEOUT 300)
# Every test above that needs a GPU: the device script runs exactly these with DRNET_REQUIRE_GPU=1.
set(DRNET_GPU_TESTS test_cuda_ops test_parity_cuda test_parity_cuda_tf32 test_resume_cuda test_cuda_speed)
set_property(TEST ${DRNET_GPU_TESTS} APPEND PROPERTY LABELS gpu)
# The same CUDA-vs-CPU comparisons with batch-norm statistics split over many blocks (off by default).
add_test(NAME test_cuda_ops_bn_split COMMAND test_cuda_ops --quick WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(test_cuda_ops_bn_split PROPERTIES SKIP_RETURN_CODE 77 LABELS gpu TIMEOUT 300
                     ENVIRONMENT "DRNET_CUDA_BN_SPLIT=1;CIFAR10_PATH=${CIFAR10_PATH};OMP_NUM_THREADS=2")
add_executable(bench-cpu train/bench/bench_cpu.c)
target_link_libraries(bench-cpu PRIVATE drnet)
# Weight exchange with PyTorch both ways (skipped without /usr/bin/python3 + torch, or without data).
add_test(NAME test_exchange COMMAND bash ${PROJECT_SOURCE_DIR}/tests/test_exchange.sh $<TARGET_FILE:train>)
set_tests_properties(test_exchange PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600
                     ENVIRONMENT "CIFAR10_PATH=${CIFAR10_PATH};OMP_NUM_THREADS=2")
# --gpu-data / --cuda-graph / --bench-steps on the CPU (skipped without the data or numpy).
add_test(NAME test_speed COMMAND bash ${PROJECT_SOURCE_DIR}/tests/test_speed.sh $<TARGET_FILE:train>)
set_tests_properties(test_speed PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600
                     ENVIRONMENT "CIFAR10_PATH=${CIFAR10_PATH};OMP_NUM_THREADS=2")
add_test(NAME test_cuda_speed_cpu COMMAND test_cuda_speed --dry-run-cpu WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
set_tests_properties(test_cuda_speed_cpu PROPERTIES TIMEOUT 600 ENVIRONMENT "CIFAR10_PATH=${CIFAR10_PATH};OMP_NUM_THREADS=2")
