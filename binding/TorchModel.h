// A loaded TorchScript flow model and the work done on it. Plain C++: used only on the model's worker thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include <torch/script.h>

#include "Frame.h"
#include "ModuleWeights.h"
#include "Padding.h"

struct LoadOptions {
  std::string modelPath;
  std::string weightsPath;            // a state dict put in place of the export's own weights, when given
  std::vector<KeyFormat> keyFormats;  // how the weights file may name the tensors, tried in order
  bool randomWeights = false;         // random weights instead (an explicit request: tests and training)
  uint64_t randomSeed = 0;
  bool inputBgr = false;  // the weights expect BGR input (FlowNetPytorch's Caffe conversion)
  std::string device = "cpu";
  int threads = 1;
  // "bfloat16": the networks' weights are cast to bfloat16 after loading (exports that declare
  // flow_mixed_precision); coordinates, correlation and lookups stay in float32. Else "float32".
  std::string precision = "float32";
};

// Bounds on what an export may declare about itself: outside them a file is refused, not trusted.
constexpr int kMaxStride = 64;
constexpr int kMaxMinSize = 1024;
constexpr int kMaxIterations = 100;  // models.ts's MAX_ITERATIONS (a test holds them equal)

struct ModelInfo {
  std::string metadataJson;  // the export's embedded metadata, parsed by TypeScript
  std::string device;        // the resolved device, e.g. "cpu" or "cuda:0"
  int stride = 8;            // from the export's typed attributes (flow_stride, flow_min_size, ...)
  int minSize = 64;
  int defaultIterations = 12;
  std::vector<std::string> weightsLoaded;  // names of the tensors a weights file replaced
  std::string weightsFormat;               // the key format the weights file was read with
  double divFlow = 0;                      // FlowNet's output scale in use (0 for other models)
  std::string precision = "float32";       // the networks' arithmetic: "float32" or "bfloat16"
};

// How far RAFT refines: at most `iterations`, stopping early once an iteration's mean update is under `tolerance`
// pixels (0: always `iterations`); `onTheFly` computes each correlation window from the features instead of from the
// all-pairs volume (the same values, in memory linear in the frame's size).
struct Refinement {
  int iterations = 12;
  double tolerance = 0;
  bool onTheFly = false;
};

struct StreamOptions {
  bool reuseFeatures = true;  // encode each frame once: its features serve both pairs it belongs to
  bool warmStart = true;      // start refinement from the previous pair's flow, carried forward
};

class TorchModel {
 public:
  // Throws FlowError with ERR_MODEL_LOAD, ERR_WEIGHTS or ERR_DEVICE.
  ModelInfo Load(const LoadOptions& options);

  // Flow from frame a to frame b, at the frames' own size.
  FlowResult Estimate(const Frame& a, const Frame& b, const Refinement& refinement);

  // One frame of a video stream: the flow from the stream's previous frame to this one (empty for the first).
  FlowResult StreamStep(uint32_t stream, const Frame& frame, const Refinement& refinement,
                        const StreamOptions& options);
  void StreamEnd(uint32_t stream);

  void Release();

 private:
  struct StreamState {
    torch::Tensor image;     // padded RGB of the previous frame
    torch::Tensor features;  // its feature map (RAFT), when reused
    torch::Tensor lowFlow;   // the previous pair's 1/8-resolution flow, for warm starts
    int width = 0, height = 0;
  };

  torch::Tensor ToTensor(const Frame& frame) const;
  torch::Tensor Pad(const torch::Tensor& image, const Padding& padding) const;
  FlowResult Crop(torch::Tensor flow, const Padding& padding) const;
  bool HasRaftEntryPoints();
  // `true` for the `on_the_fly` argument of `method` at `position`, or an error naming an export without it.
  torch::jit::IValue OnTheFlyArgument(const std::string& method, size_t position);
  // RAFT's update loop from encoded frames: the full-resolution flow, the 1/8-resolution flow and the iterations run.
  std::tuple<torch::Tensor, torch::Tensor, int> Refine(const torch::Tensor& fmap1, const torch::Tensor& fmap2,
                                                       const c10::intrusive_ptr<c10::ivalue::Tuple>& context,
                                                       const Refinement& refinement, const torch::jit::IValue& init);

  torch::jit::Module module_;
  torch::Device device_{torch::kCPU};
  int stride_ = 8;
  int minSize_ = 64;
  int defaultIterations_ = 12;
  bool loaded_ = false;
  bool inputBgr_ = false;
  std::map<uint32_t, StreamState> streams_;
};
