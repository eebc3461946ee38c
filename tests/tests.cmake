# The test suite, included by the top-level CMakeLists.txt (drnet_test builds tests/<name>.c).
add_library(drnet_testutil STATIC tests/test_util.c tests/op_cases.c)
target_link_libraries(drnet_testutil PUBLIC drnet)
link_libraries(drnet_testutil)

drnet_test(test_gradcheck)
