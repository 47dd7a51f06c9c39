// Puts a state dict's tensors into a TorchScript module's parameters and buffers, checking every key, or fills them
// with random values when the caller asks for random weights.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <torch/script.h>

#include "StateDictReader.h"

// One way a published weight file names the module's tensors: regular-expression rewrites (ECMAScript syntax, `$1`
// in the replacement) applied in order to each key of the file. The rules are data, defined once in
// models/weights.json; the addon only applies them.
struct KeyFormat {
  std::string name;
  std::vector<std::pair<std::string, std::string>> rules;
};

struct AppliedWeights {
  std::string format;               // the key format that matched
  std::vector<std::string> loaded;  // the module's names that received a tensor
};

class ModuleWeights {
 public:
  // Tries each format in turn and applies the first under which the file's keys are exactly the module's: every
  // parameter and buffer present with the right shape, no key left over, no two keys onto one tensor. A module's
  // tensor reachable under several names (the RAFT authors register some norm layers twice) needs only one of them.
  // Tensors are replaced, not copied into, so a weightless export (its tensors stored as one broadcast zero) takes
  // weights as a full one does. Throws FlowError(ERR_WEIGHTS) naming the missing, unexpected, doubled and mis-shaped
  // keys under the closest format.
  static AppliedWeights Apply(torch::jit::Module& module, const StateDict& state, const std::vector<KeyFormat>& formats,
                              const std::string& path);

  // Random weights as PyTorch initialises its layers: convolution weights and biases uniform in +-1/sqrt(fan_in),
  // norm scales 1, shifts and running means 0, running variances 1. Seeded, so the same seed gives the same weights.
  static void Randomize(torch::jit::Module& module, uint64_t seed);
};
