#include "ModuleWeights.h"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>
#include <map>
#include <regex>
#include <set>
#include <sstream>

#include "FlowError.h"

namespace {

constexpr size_t kMaxKeyLength = 1024;

// A module's tensor under every name it can be reached by, and every (module, attribute) that holds it.
struct Slot {
  torch::Tensor tensor;
  std::vector<std::string> names;
  std::vector<std::pair<torch::jit::Module, std::string>> owners;
};

struct Slots {
  std::map<c10::TensorImpl*, Slot> byTensor;
  std::vector<c10::TensorImpl*> order;
};

void Collect(const torch::jit::Module& module, const std::string& prefix, Slots& slots) {
  auto add = [&](const std::string& attribute, const torch::Tensor& tensor) {
    auto* key = tensor.unsafeGetTensorImpl();
    auto it = slots.byTensor.find(key);
    if (it == slots.byTensor.end()) {
      it = slots.byTensor.emplace(key, Slot{tensor, {}, {}}).first;
      slots.order.push_back(key);
    }
    it->second.names.push_back(prefix + attribute);
    it->second.owners.emplace_back(module, attribute);
  };
  for (const auto& p : module.named_parameters(/*recurse=*/false)) add(p.name, p.value);
  for (const auto& b : module.named_buffers(/*recurse=*/false)) add(b.name, b.value);
  for (const auto& child : module.named_children()) Collect(child.value, prefix + child.name + ".", slots);
}

// Puts `value` in place of the slot's tensor under every (module, attribute) that holds it, so aliases stay one.
void Assign(const Slot& slot, const torch::Tensor& value) {
  for (const auto& [owner, attribute] : slot.owners) {
    torch::jit::Module holder = owner;
    holder.setattr(attribute, value);
  }
}

std::string Shape(const torch::Tensor& t) {
  std::ostringstream out;
  out << "[";
  for (int64_t d = 0; d < t.dim(); ++d) out << (d ? ", " : "") << t.size(d);
  out << "]";
  return out.str();
}

bool EndsWith(const std::string& name, const std::string& suffix) {
  return name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Checkpoints from PyTorch < 0.4.1 predate batch norm's step counter, which inference never reads.
bool IsOptional(const std::string& name) { return EndsWith(name, "num_batches_tracked"); }

std::string List(const std::vector<std::string>& names) {
  std::ostringstream out;
  const size_t shown = std::min<size_t>(names.size(), 12);
  for (size_t i = 0; i < shown; ++i) out << (i ? ", " : "") << names[i];
  if (names.size() > shown) out << " and " << names.size() - shown << " more";
  return out.str();
}

// What reading the file under one format would do: the copies to make, or the problems in the way.
struct Match {
  std::vector<std::pair<const Slot*, torch::Tensor>> assignments;
  std::vector<std::string> loaded, missing, unexpected, doubled, misshaped;
  size_t Problems() const { return missing.size() + unexpected.size() + doubled.size() + misshaped.size(); }
};

Match MatchFormat(const Slots& slots, const StateDict& state, const KeyFormat& format) {
  std::vector<std::pair<std::regex, std::string>> rules;
  for (const auto& [pattern, replacement] : format.rules) {
    try {
      rules.emplace_back(std::regex(pattern, std::regex::ECMAScript), replacement);
    } catch (const std::regex_error& e) {
      throw FlowError(ErrorCode::Weights, "key format '" + format.name + "' has an invalid rule '" + pattern + "'");
    }
  }
  Match match;
  std::map<std::string, std::string> renamed;  // module name -> the file's key
  std::vector<std::string> renamedOrder;
  for (const auto& key : state.names) {
    std::string name = key;
    for (const auto& [pattern, replacement] : rules) name = std::regex_replace(name, pattern, replacement);
    auto [it, inserted] = renamed.emplace(name, key);
    if (!inserted) {
      match.doubled.push_back(it->second + " and " + key + " (both " + name + ")");
      continue;
    }
    renamedOrder.push_back(name);
  }

  std::set<std::string> known;
  for (auto* key : slots.order) {
    const Slot& slot = slots.byTensor.at(key);
    known.insert(slot.names.begin(), slot.names.end());
    std::vector<std::string> found;
    for (const auto& name : slot.names) {
      if (renamed.count(name)) found.push_back(name);
    }
    if (found.empty()) {
      if (!IsOptional(slot.names.front())) match.missing.push_back(slot.names.front());
      continue;
    }
    const torch::Tensor& source = state.tensors.at(renamed.at(found.front()));
    bool shapesAgree = true;
    for (const auto& name : found) {
      const torch::Tensor& t = state.tensors.at(renamed.at(name));
      if (t.sizes() != slot.tensor.sizes()) {
        match.misshaped.push_back(name + " (file " + Shape(t) + ", model " + Shape(slot.tensor) + ")");
        shapesAgree = false;
      } else if (found.size() > 1 && t.unsafeGetTensorImpl() != source.unsafeGetTensorImpl() && !t.equal(source)) {
        // Two names of one module tensor must carry one value, or the file is ambiguous.
        match.doubled.push_back(found.front() + " and " + name + " (one tensor, two values)");
        shapesAgree = false;
      }
    }
    if (!shapesAgree) continue;
    match.assignments.emplace_back(&slot, source);
    match.loaded.push_back(found.front());
  }
  for (const auto& name : renamedOrder) {
    if (!known.count(name)) match.unexpected.push_back(name);
  }
  return match;
}

}  // namespace

AppliedWeights ModuleWeights::Apply(torch::jit::Module& module, const StateDict& state,
                                    const std::vector<KeyFormat>& formats, const std::string& path) {
  if (formats.empty()) throw FlowError(ErrorCode::Weights, "no key format to read weights file '" + path + "' with");
  Slots slots;
  Collect(module, "", slots);
  // Renaming costs time in proportion to the keys' total length: a file with far more keys than the model has
  // tensors, or with keys no module path comes near, is refused before any rule runs.
  const size_t maxKeys = 4 * slots.order.size() + 1000;
  if (state.names.size() > maxKeys) {
    throw FlowError(ErrorCode::Weights, "weights file '" + path + "' holds " + std::to_string(state.names.size()) +
                                            " tensors; the model has " + std::to_string(slots.order.size()) +
                                            ": these are not weights for this architecture");
  }
  for (const auto& key : state.names) {
    if (key.size() > kMaxKeyLength) {
      throw FlowError(ErrorCode::Weights, "weights file '" + path + "' has a key of " + std::to_string(key.size()) +
                                              " characters (at most " + std::to_string(kMaxKeyLength) + " are read)");
    }
  }

  size_t best = 0;
  std::vector<Match> matches;
  for (size_t i = 0; i < formats.size(); ++i) {
    matches.push_back(MatchFormat(slots, state, formats[i]));
    if (matches[i].Problems() < matches[best].Problems()) best = i;
    if (matches[i].Problems() == 0) break;
  }
  const Match& match = matches[best];
  if (match.Problems() != 0) {
    // Keys are named as the model names them, after the format's renaming.
    std::string message = "weights file '" + path + "' does not match the model:";
    if (!match.missing.empty()) message += " missing keys: " + List(match.missing) + ";";
    if (!match.unexpected.empty()) message += " unexpected keys: " + List(match.unexpected) + ";";
    if (!match.misshaped.empty()) message += " mis-shaped keys: " + List(match.misshaped) + ";";
    if (!match.doubled.empty()) message += " keys naming one tensor twice: " + List(match.doubled) + ";";
    message.pop_back();
    if (formats.size() > 1) {
      message += " (read with " + formats[best].name + " names, the closest of the " + std::to_string(formats.size()) +
                 " key formats tried)";
    }
    throw FlowError(ErrorCode::Weights, message);
  }
  at::NoGradGuard noGrad;
  for (const auto& [slot, source] : match.assignments)
    Assign(*slot, source.to(slot->tensor.dtype()).contiguous().clone());
  return AppliedWeights{formats[best].name, match.loaded};
}

void ModuleWeights::Randomize(torch::jit::Module& module, uint64_t seed) {
  Slots slots;
  Collect(module, "", slots);
  auto generator = at::make_generator<at::CPUGeneratorImpl>(seed);
  at::NoGradGuard noGrad;
  auto blank = [](const Slot& slot) { return torch::empty(slot.tensor.sizes(), slot.tensor.options()); };
  auto isLayerWeight = [](const Slot& slot) {
    return EndsWith(slot.names.front(), "weight") && slot.tensor.dim() >= 2;
  };
  // Layer weights first, so that each bias can share its layer's bound (kept by the module that holds both).
  std::map<c10::ivalue::Object*, double> bounds;
  for (auto* key : slots.order) {
    const Slot& slot = slots.byTensor.at(key);
    if (!isLayerWeight(slot)) continue;
    const int64_t fanIn = std::max<int64_t>(slot.tensor.numel() / slot.tensor.size(0), 1);
    const double bound = 1.0 / std::sqrt(static_cast<double>(fanIn));
    bounds[slot.owners.front().first._ivalue().get()] = bound;
    Assign(slot, blank(slot).uniform_(-bound, bound, generator));
  }
  for (auto* key : slots.order) {
    const Slot& slot = slots.byTensor.at(key);
    if (isLayerWeight(slot)) continue;
    const std::string& name = slot.names.front();
    auto bound = bounds.find(slot.owners.front().first._ivalue().get());
    torch::Tensor value = blank(slot);
    if (EndsWith(name, "bias") && bound != bounds.end()) {
      value.uniform_(-bound->second, bound->second, generator);
    } else if (EndsWith(name, "weight") || EndsWith(name, "running_var")) {
      value.fill_(1);
    } else {
      value.zero_();
    }
    Assign(slot, value);
  }
}
