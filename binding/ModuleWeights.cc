#include "ModuleWeights.h"

#include <map>
#include <set>
#include <sstream>

#include "FlowError.h"

namespace {

// A module's tensors under every name they can be reached by: the RAFT authors register some norm layers
// twice (as normN and inside `downsample`), and their checkpoints list both names.
struct Slot {
  torch::Tensor tensor;
  std::vector<std::string> names;
};

void Collect(const torch::jit::Module& module, const std::string& prefix, std::map<c10::TensorImpl*, Slot>& slots,
             std::vector<c10::TensorImpl*>& order) {
  auto add = [&](const std::string& name, const torch::Tensor& tensor) {
    auto* key = tensor.unsafeGetTensorImpl();
    auto it = slots.find(key);
    if (it == slots.end()) {
      slots[key] = Slot{tensor, {name}};
      order.push_back(key);
    } else {
      it->second.names.push_back(name);
    }
  };
  for (const auto& p : module.named_parameters(/*recurse=*/false)) add(prefix + p.name, p.value);
  for (const auto& b : module.named_buffers(/*recurse=*/false)) add(prefix + b.name, b.value);
  for (const auto& child : module.named_children()) Collect(child.value, prefix + child.name + ".", slots, order);
}

std::string Shape(const torch::Tensor& t) {
  std::ostringstream out;
  out << "[";
  for (int64_t d = 0; d < t.dim(); ++d) out << (d ? ", " : "") << t.size(d);
  out << "]";
  return out.str();
}

bool IsOptional(const std::string& name) {
  // Checkpoints from PyTorch < 0.4.1 predate batch norm's step counter, which inference never reads.
  const std::string suffix = "num_batches_tracked";
  return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string List(const std::vector<std::string>& names) {
  std::ostringstream out;
  const size_t shown = std::min<size_t>(names.size(), 12);
  for (size_t i = 0; i < shown; ++i) out << (i ? ", " : "") << names[i];
  if (names.size() > shown) out << " and " << names.size() - shown << " more";
  return out.str();
}

}  // namespace

std::vector<std::string> ModuleWeights::Apply(torch::jit::Module& module, const StateDict& state,
                                              const std::string& path) {
  static const std::string kDataParallel = "module.";
  std::map<std::string, torch::Tensor> file;
  std::vector<std::string> fileOrder;
  for (const auto& name : state.names) {
    const bool prefixed = name.compare(0, kDataParallel.size(), kDataParallel) == 0;
    const std::string key = prefixed ? name.substr(kDataParallel.size()) : name;
    file[key] = state.tensors.at(name);
    fileOrder.push_back(key);
  }

  std::map<c10::TensorImpl*, Slot> slots;
  std::vector<c10::TensorImpl*> order;
  Collect(module, "", slots, order);

  std::set<std::string> known;
  std::vector<std::string> missing, misshaped, loaded;
  std::vector<std::pair<torch::Tensor, torch::Tensor>> copies;
  for (auto* key : order) {
    const Slot& slot = slots[key];
    known.insert(slot.names.begin(), slot.names.end());
    const torch::Tensor* source = nullptr;
    std::string found;
    for (const auto& name : slot.names) {
      auto it = file.find(name);
      if (it == file.end()) continue;
      if (it->second.sizes() != slot.tensor.sizes()) {
        misshaped.push_back(name + " (file " + Shape(it->second) + ", model " + Shape(slot.tensor) + ")");
      }
      source = &it->second;
      found = name;
    }
    if (!source) {
      if (!IsOptional(slot.names.front())) missing.push_back(slot.names.front());
      continue;
    }
    copies.emplace_back(slot.tensor, *source);
    loaded.push_back(found);
  }
  std::vector<std::string> unexpected;
  for (const auto& key : fileOrder) {
    if (!known.count(key)) unexpected.push_back(key);
  }
  if (!missing.empty() || !unexpected.empty() || !misshaped.empty()) {
    std::string message = "weights file '" + path + "' does not match the model:";
    if (!missing.empty()) message += " missing keys: " + List(missing) + ";";
    if (!unexpected.empty()) message += " unexpected keys: " + List(unexpected) + ";";
    if (!misshaped.empty()) message += " mis-shaped keys: " + List(misshaped) + ";";
    message.pop_back();
    throw FlowError("ERR_WEIGHTS", message);
  }
  torch::NoGradGuard noGrad;
  for (auto& [target, source] : copies) target.copy_(source.to(target.dtype()));
  return loaded;
}
