// Parsing of device names ('cpu', 'cuda', 'cuda:N', 'auto') against what this LibTorch can reach.
#pragma once

#include <string>

#include <torch/script.h>

class Device {
 public:
  // Throws FlowError(ERR_DEVICE) when the device is unknown or not available in this build or machine.
  static torch::Device Resolve(const std::string& name);
  static bool CudaAvailable();
  static int CudaDeviceCount();
};
