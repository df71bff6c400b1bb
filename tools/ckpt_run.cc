// ckpt-run: trains a model with store-all and with a plan on a device and reports predicted vs
// measured peak memory and step time. All the logic is in the library (ckpt/executor_cli.h,
// lib/executor_cli.cc); this main only lists the devices of this build. See docs/executor.md.
#include <iostream>

#include "ckpt/cpu_backend.h"
#include "ckpt/executor_cli.h"
#ifdef CKPT_HAVE_CUDA
#include "ckpt/cuda_backend.h"
#endif

int main(int argc, char** argv) {
  std::vector<ckpt::DeviceFactory> devices = {{"cpu", [] { return ckpt::make_cpu_backend(); }}};
#ifdef CKPT_HAVE_CUDA
  devices.push_back({"cuda", [] { return ckpt::make_cuda_backend(); }});
#endif
  return ckpt::run_executor_cli(argc, argv, std::cout, std::cerr, devices);
}
