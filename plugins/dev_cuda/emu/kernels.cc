/* kernels.cc - kernels.cu compiled as host C++ for the emulator (emu.h, device.h). */
#include "device.h"

#include "../kernels.cu"
