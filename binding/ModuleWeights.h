// Copies a state dict into a TorchScript module's parameters and buffers, checking every key.
#pragma once

#include <string>
#include <vector>

#include <torch/script.h>

#include "StateDictReader.h"

class ModuleWeights {
 public:
  // Strips DataParallel's `module.` prefix, then requires every parameter and buffer to be present with the
  // right shape and every key to belong to the module. Throws FlowError(ERR_WEIGHTS) naming the missing,
  // unexpected and mis-shaped keys. Returns the names that were loaded.
  static std::vector<std::string> Apply(torch::jit::Module& module, const StateDict& state, const std::string& path);
};
