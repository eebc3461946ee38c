# Downloads the official CIFAR-10 binary archive into data/ and checks its MD5, with CMake alone:
#
#   cmake -P cmake/fetch_cifar10.cmake                 (or: cmake --build build --target fetch-data)
#
# Options (-DNAME=VALUE before -P): URL (the official address), MD5 (the official archive's; another
# value accepts a different copy deliberately, and a mismatch prints the -DMD5= that would),
# DEST (data/cifar-10-binary.tar.gz in the source tree). An existing DEST with the right MD5 is kept;
# the download goes to DEST.part and is renamed only once its MD5 matches, so an interrupted or
# corrupted download never leaves a file that looks like the data.
cmake_minimum_required(VERSION 3.24)
if(NOT DEFINED URL)
  set(URL "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz")
endif()
if(NOT DEFINED MD5)
  set(MD5 "c32a1d4ab5d03f1284b67883e8d87530")
endif()
if(NOT DEFINED DEST)
  get_filename_component(DEST "${CMAKE_CURRENT_LIST_DIR}/../data/cifar-10-binary.tar.gz" ABSOLUTE)
endif()

if(EXISTS "${DEST}")
  file(MD5 "${DEST}" have)
  if(have STREQUAL MD5)
    message(STATUS "${DEST} is already there (MD5 ${MD5})")
    return()
  endif()
  message(FATAL_ERROR "${DEST} exists but its MD5 is ${have}, not ${MD5}: move it away and run again, "
                      "or, if it is a copy you chose deliberately, accept it with -DMD5=${have} (before -P)")
endif()

get_filename_component(dir "${DEST}" DIRECTORY)
file(MAKE_DIRECTORY "${dir}")
message(STATUS "downloading ${URL} -> ${DEST} (about 163 MiB for the real archive)")
file(DOWNLOAD "${URL}" "${DEST}.part" STATUS status SHOW_PROGRESS TLS_VERIFY ON)
list(GET status 0 code)
list(GET status 1 reason)
if(NOT code EQUAL 0)
  file(REMOVE "${DEST}.part")
  message(FATAL_ERROR "could not download ${URL}: ${reason} (error ${code}); get it by other means and put it at ${DEST}")
endif()
file(MD5 "${DEST}.part" got)
if(NOT got STREQUAL MD5)
  file(REMOVE "${DEST}.part")
  message(FATAL_ERROR "the download from ${URL} has MD5 ${got}, expected ${MD5}: not the official archive "
                      "(removed it); to fetch a different copy deliberately, give its MD5 with -DMD5=${got} "
                      "(before -P)")
endif()
file(RENAME "${DEST}.part" "${DEST}")
message(STATUS "${DEST}: MD5 ${MD5} verified")
