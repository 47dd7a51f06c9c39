#include "Device.h"

#include <torch/cuda.h>

#include "FlowError.h"

bool Device::CudaAvailable() { return torch::cuda::is_available(); }

int Device::CudaDeviceCount() { return static_cast<int>(torch::cuda::device_count()); }

torch::Device Device::Resolve(const std::string& name) {
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (name == "auto") return CudaAvailable() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  if (name == "cuda" || name.rfind("cuda:", 0) == 0) {
    int index = 0;
    if (name.size() > 5) {
      const std::string digits = name.substr(5);
      if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 4) {
        throw FlowError(ErrorCode::Device,
                        "device '" + name + "' is not a valid CUDA device name (expected cuda or cuda:N)");
      }
      index = std::stoi(digits);
    }
    if (!CudaAvailable()) {
      throw FlowError(ErrorCode::Device,
                      "device '" + name +
                          "' was requested but CUDA is not available (this LibTorch build or machine "
                          "has no usable CUDA device)");
    }
    const int count = CudaDeviceCount();
    if (index >= count) {
      throw FlowError(ErrorCode::Device,
                      "device '" + name + "' does not exist: " + std::to_string(count) + " CUDA device(s) are visible");
    }
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw FlowError(ErrorCode::Device, "unknown device '" + name + "' (expected cpu, cuda, cuda:N or auto)");
}
