// A loaded TorchScript flow model and the work done on it. Plain C++: used only on the model's worker thread.
#pragma once

#include <string>

#include <torch/script.h>
#include <torch/torch.h>

#include "Frame.h"

struct LoadOptions {
  std::string modelPath;
  std::string weightsPath;  // optional state dict applied over the export's own weights
  std::string device = "cpu";
  int threads = 1;
};

struct ModelInfo {
  std::string metadataJson;  // the export's embedded metadata, parsed by TypeScript
  std::string device;        // the resolved device, e.g. "cpu" or "cuda:0"
  int stride = 8;
  int minSize = 64;
  std::vector<std::string> weightsLoaded;  // names of the tensors a weights file replaced
  double divFlow = 0;                      // FlowNet's output scale in use (0 for other models)
};

class TorchModel {
 public:
  // Throws FlowError with ERR_MODEL_LOAD, ERR_WEIGHTS or ERR_DEVICE.
  ModelInfo Load(const LoadOptions& options);

  // Flow from frame a to frame b, at the frames' own size.
  FlowResult Estimate(const Frame& a, const Frame& b, int iterations);

  void Release();

 private:
  torch::Tensor ToTensor(const Frame& frame) const;

  torch::jit::Module module_;
  torch::Device device_{torch::kCPU};
  int stride_ = 8;
  int minSize_ = 64;
  bool loaded_ = false;
};
