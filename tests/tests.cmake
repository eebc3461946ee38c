# The test suite, included by the top-level CMakeLists.txt (drnet_test builds tests/<name>.c).
add_library(drnet_testutil STATIC tests/test_util.c tests/op_cases.c)
target_link_libraries(drnet_testutil PUBLIC drnet)
link_libraries(drnet_testutil)

drnet_test(test_gradcheck)
drnet_test(test_data TIMEOUT 300)
drnet_test(test_depthwise)
drnet_test(test_bn_sgd)
drnet_test(test_checkpoint)
drnet_test(test_overfit TIMEOUT 600)
drnet_test(test_resume ARGS $<TARGET_FILE:train> TIMEOUT 600)
add_test(NAME test_cli COMMAND bash ${PROJECT_SOURCE_DIR}/tests/test_cli.sh $<TARGET_FILE:train>)
set_tests_properties(test_cli PROPERTIES ENVIRONMENT "CIFAR10_PATH=${CIFAR10_PATH};OMP_NUM_THREADS=2" TIMEOUT 600)
