# The test suite, included by the top-level CMakeLists.txt (drnet_test builds tests/<name>.c).
add_library(drnet_testutil STATIC tests/test_util.c tests/op_cases.c)
target_link_libraries(drnet_testutil PUBLIC drnet)
link_libraries(drnet_testutil)

drnet_test(test_gradcheck)
drnet_test(test_data TIMEOUT 300)
drnet_test(test_depthwise)
drnet_test(test_bn_sgd)
drnet_test(test_checkpoint)
drnet_test(test_profile)
drnet_test(test_overfit TIMEOUT 600)
drnet_test(test_resume ARGS $<TARGET_FILE:train> TIMEOUT 600)
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
add_executable(bench-cpu train/bench/bench_cpu.c)
target_link_libraries(bench-cpu PRIVATE drnet)
# Weight exchange with PyTorch both ways (skipped without /usr/bin/python3 + torch, or without data).
add_test(NAME test_exchange COMMAND bash ${PROJECT_SOURCE_DIR}/tests/test_exchange.sh $<TARGET_FILE:train>)
set_tests_properties(test_exchange PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600
                     ENVIRONMENT "CIFAR10_PATH=${CIFAR10_PATH};OMP_NUM_THREADS=2")
# Run directories: what a run keeps, what --resume restores, the log's overwrite/append rule.
add_test(NAME test_rundir COMMAND bash ${PROJECT_SOURCE_DIR}/tests/test_rundir.sh $<TARGET_FILE:train>)
set_tests_properties(test_rundir PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600
                     ENVIRONMENT "CIFAR10_PATH=${CIFAR10_PATH};OMP_NUM_THREADS=2")
# tools/export.py: PyTorch and ONNX exports predict as ./train does (skipped without torch or data).
add_test(NAME test_export COMMAND bash ${PROJECT_SOURCE_DIR}/tests/test_export.sh $<TARGET_FILE:train>)
set_tests_properties(test_export PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 600
                     ENVIRONMENT "CIFAR10_PATH=${CIFAR10_PATH};OMP_NUM_THREADS=2")
# cmake/fetch_cifar10.cmake against a local file:// archive (the MD5 check, no file left on failure).
add_test(NAME test_fetch COMMAND bash ${PROJECT_SOURCE_DIR}/tests/test_fetch.sh ${CMAKE_COMMAND})
