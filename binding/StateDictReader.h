// Reads PyTorch checkpoint files (torch.save) into named tensors without Python.
//
// LibTorch 1.13's own unpickler turns collections.OrderedDict into None, and every state dict that
// module.state_dict() returns is an OrderedDict, so the checkpoints people have (the RAFT authors', FlowNet's,
// torchvision's) cannot be read with torch::pickle_load. This reader interprets the subset of the pickle
// protocol that torch.save emits, for both the zip format (PyTorch >= 1.6) and the legacy stream format.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <torch/torch.h>

struct StateDict {
  std::vector<std::string> names;  // in file order
  std::map<std::string, torch::Tensor> tensors;
  // Numbers stored beside the state dict (for example FlowNet's div_flow), when the file is a dict of entries.
  std::map<std::string, double> scalars;
};

class StateDictReader {
 public:
  // Throws FlowError(ERR_WEIGHTS) naming the file and what could not be read.
  static StateDict Read(const std::string& path);
};
