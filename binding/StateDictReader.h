// Reads PyTorch checkpoint files (torch.save) into named tensors without Python.
//
// It exists only because LibTorch 1.13 cannot read the checkpoints people have: `torch::pickle_load(bytes)` on a
// file written by `torch.save(model.state_dict(), f)` yields None where the dict should be (1.13's unpickler turns
// `collections.OrderedDict`, the type of every state_dict(), into None), and on the legacy stream format it throws
// "failed finding central directory". The RAFT authors', FlowNetPytorch's and torchvision's files are all one or
// the other. This reader interprets the subset of the pickle protocol that torch.save emits, in both formats; it
// can go once the addon builds against a LibTorch whose pickle_load reads them.
#pragma once

#include <map>
#include <string>
#include <vector>

#include <torch/script.h>

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
