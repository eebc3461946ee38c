# cmake -DIN=kernels/cuda/x.cu -DOUT=build/emu/x.cpp -P tests/cuda_emu/convert.cmake
# Makes a CUDA source compilable as C++ for the emulator: every `kernel<<<config>>>(args)` becomes
# `EMU_LAUNCH(kernel, config)(args)` (tests/cuda_emu/emu_kernel.h). Nothing else changes; a #line
# keeps compiler messages and __FILE__ pointing at the original file.
file(READ "${IN}" text)
string(REPLACE "->" "@EMU_ARROW@" text "${text}") # a '>' the configuration may hold
string(REGEX REPLACE "([A-Za-z_][A-Za-z0-9_]*)[ \t]*<<<([^>]*)>>>" "EMU_LAUNCH(\\1, \\2)" text "${text}")
string(REPLACE "@EMU_ARROW@" "->" text "${text}")
if(text MATCHES "<<<")
  message(FATAL_ERROR "${IN}: a kernel launch the emulator's converter cannot rewrite (a template kernel, "
                      "or '>' inside the launch configuration)")
endif()
file(WRITE "${OUT}.tmp" "#line 1 \"${IN}\"\n${text}")
file(RENAME "${OUT}.tmp" "${OUT}")
