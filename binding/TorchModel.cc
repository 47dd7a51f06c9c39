#include "TorchModel.h"

#include <ATen/Parallel.h>

#include "Device.h"
#include "ExportFile.h"
#include "FlowError.h"
#include "ModuleWeights.h"
#include "StateDictReader.h"

namespace {

// An integer property the export carries as a typed attribute (flowlib.models.TYPED_ATTRIBUTES), checked against
// the range the addon can honour: a file must not be able to make the addon divide by zero or pad without bound.
int TypedProperty(const torch::jit::Module& module, const std::string& name, int64_t lowest, int64_t highest,
                  const std::string& path) {
  if (!module.hasattr(name) || !module.attr(name).isInt()) {
    throw FlowError(ErrorCode::ModelLoad, "model file '" + path + "' has no integer attribute '" + name +
                                              "' (it was exported by an older version: export it again with "
                                              "scripts/export)");
  }
  const int64_t value = module.attr(name).toInt();
  if (value < lowest || value > highest) {
    throw FlowError(ErrorCode::ModelLoad, "model file '" + path + "' declares " + name + " = " + std::to_string(value) +
                                              ", outside " + std::to_string(lowest) + ".." + std::to_string(highest));
  }
  return static_cast<int>(value);
}

std::string DeviceName(const torch::Device& device) {
  if (device.is_cpu()) return "cpu";
  return "cuda:" + std::to_string(device.index() < 0 ? 0 : device.index());
}

}  // namespace

ModelInfo TorchModel::Load(const LoadOptions& options) {
  at::set_num_threads(options.threads);
  device_ = Device::Resolve(options.device);
  if (device_.is_cuda()) {
    // CUDA flows equal CPU flows to about 1e-3 px only in true float32: TensorFloat-32 (LibTorch's default for
    // cuDNN convolutions) rounds their inputs to 10 bits of mantissa. precision: 'bfloat16' is the fast path.
    at::globalContext().setAllowTF32CuDNN(false);
    at::globalContext().setAllowTF32CuBLAS(false);
  }
  CheckExportFile(options.modelPath);
  try {
    module_ = torch::jit::load(options.modelPath, torch::kCPU);
  } catch (const c10::Error& e) {
    throw FlowError(ErrorCode::ModelLoad, "model file '" + options.modelPath +
                                              "' is not a loadable TorchScript export: " + e.what_without_backtrace());
  } catch (const std::exception& e) {
    throw FlowError(ErrorCode::ModelLoad,
                    "model file '" + options.modelPath + "' is not a loadable TorchScript export: " + e.what());
  }
  if (!module_.hasattr("flow_metadata") || !module_.attr("flow_metadata").isString()) {
    throw FlowError(ErrorCode::ModelLoad, "model file '" + options.modelPath +
                                              "' is a TorchScript module but not an optical-flow export (it has no "
                                              "flow_metadata; export it with scripts/export)");
  }
  ModelInfo info;
  info.metadataJson = module_.attr("flow_metadata").toStringRef();
  stride_ = TypedProperty(module_, "flow_stride", 1, kMaxStride, options.modelPath);
  if ((stride_ & (stride_ - 1)) != 0) {
    throw FlowError(ErrorCode::ModelLoad, "model file '" + options.modelPath + "' declares flow_stride = " +
                                              std::to_string(stride_) + ", not a power of two");
  }
  minSize_ = std::max(TypedProperty(module_, "flow_min_size", 1, kMaxMinSize, options.modelPath), stride_);
  defaultIterations_ = TypedProperty(module_, "flow_default_iterations", 1, kMaxIterations, options.modelPath);
  const bool weightless = module_.hasattr("flow_weightless") && module_.attr("flow_weightless").isBool() &&
                          module_.attr("flow_weightless").toBool();
  if (!options.weightsPath.empty()) {
    const StateDict state = StateDictReader::Read(options.weightsPath);
    AppliedWeights applied = ModuleWeights::Apply(module_, state, options.keyFormats, options.weightsPath);
    info.weightsLoaded = std::move(applied.loaded);
    info.weightsFormat = std::move(applied.format);
    // FlowNet checkpoints carry the scale between network output and pixels.
    auto scale = state.scalars.find("div_flow");
    if (scale != state.scalars.end() && module_.hasattr("div_flow")) module_.setattr("div_flow", scale->second);
  } else if (options.randomWeights) {
    ModuleWeights::Randomize(module_, options.randomSeed);
  } else if (weightless) {
    throw FlowError(ErrorCode::Weights, "model file '" + options.modelPath +
                                            "' holds the architecture without weights: give weights (a published name, "
                                            "a file) or ask for random ones");
  }
  inputBgr_ = options.inputBgr;
  if (module_.hasattr("div_flow") && module_.attr("div_flow").isDouble())
    info.divFlow = module_.attr("div_flow").toDouble();
  module_.eval();
  if (options.precision == "bfloat16") {
    if (!module_.hasattr("flow_mixed_precision") || !module_.attr("flow_mixed_precision").isBool() ||
        !module_.attr("flow_mixed_precision").toBool()) {
      throw FlowError(ErrorCode::ModelLoad, "model file '" + options.modelPath +
                                                "' does not support precision 'bfloat16': only RAFT exports declare "
                                                "flow_mixed_precision (those made by this version; an older one can "
                                                "be made again with scripts/export --reexport)");
    }
    module_.to(torch::kBFloat16);
  } else if (options.precision != "float32") {
    throw FlowError(ErrorCode::ModelLoad, "unknown precision '" + options.precision + "'");
  }
  info.precision = options.precision;
  module_.to(device_);
  info.device = DeviceName(device_);
  info.stride = stride_;
  info.minSize = minSize_;
  info.defaultIterations = defaultIterations_;
  loaded_ = true;
  return info;
}

void TorchModel::Release() {
  streams_.clear();
  module_ = torch::jit::Module();
  loaded_ = false;
}

torch::Tensor TorchModel::ToTensor(const Frame& frame) const {
  const auto dtype = frame.type == PixelType::UInt8 ? torch::kUInt8 : torch::kFloat32;
  // The bytes stay owned by the frame; from_blob + to(float) copies them once.
  auto hwc = torch::from_blob(const_cast<uint8_t*>(frame.bytes.data()), {frame.height, frame.width, frame.channels},
                              torch::TensorOptions().dtype(dtype));
  torch::Tensor rgb;
  switch (frame.order) {
    case ChannelOrder::RGB: rgb = hwc; break;
    case ChannelOrder::RGBA: rgb = hwc.narrow(2, 0, 3); break;
    case ChannelOrder::BGR: rgb = hwc.flip({2}); break;
    case ChannelOrder::BGRA: rgb = hwc.narrow(2, 0, 3).flip({2}); break;
    case ChannelOrder::Gray: rgb = hwc.expand({frame.height, frame.width, 3}); break;
  }
  if (inputBgr_) rgb = rgb.flip({2});
  return rgb.permute({2, 0, 1}).unsqueeze(0).to(device_, torch::kFloat32).contiguous();
}

torch::Tensor TorchModel::Pad(const torch::Tensor& image, const Padding& p) const {
  if (p.paddedHeight == p.height && p.paddedWidth == p.width) return image;
  return at::replication_pad2d(image,
                               {p.left, p.paddedWidth - p.width - p.left, p.top, p.paddedHeight - p.height - p.top});
}

FlowResult TorchModel::Crop(torch::Tensor flow, const Padding& p) const {
  if (flow.dim() != 4 || flow.size(1) != 2 || flow.size(2) != p.paddedHeight || flow.size(3) != p.paddedWidth) {
    throw FlowError(ErrorCode::Inference, "the model returned a tensor of unexpected shape " + c10::str(flow.sizes()) +
                                              " (expected [1, 2, " + std::to_string(p.paddedHeight) + ", " +
                                              std::to_string(p.paddedWidth) + "])");
  }
  flow = flow[0]
             .narrow(1, p.top, p.height)
             .narrow(2, p.left, p.width)
             .permute({1, 2, 0})
             .to(torch::kCPU, torch::kFloat32)
             .contiguous();
  // A NaN or infinite flow is never a result: it comes from corrupt weights or a broken export.
  if (!torch::isfinite(flow).all().item<bool>()) {
    throw FlowError(
        ErrorCode::Inference,
        "the model produced non-finite flow (NaN or infinity) for this pair: its weights are likely corrupt");
  }
  FlowResult result;
  result.width = p.width;
  result.height = p.height;
  result.data.resize(static_cast<size_t>(p.width) * p.height * 2);
  std::memcpy(result.data.data(), flow.data_ptr<float>(), result.data.size() * sizeof(float));
  return result;
}

FlowResult TorchModel::Estimate(const Frame& a, const Frame& b, const Refinement& refinement) {
  if (!loaded_) throw FlowError(ErrorCode::Disposed, "the model has been disposed");
  c10::InferenceMode inference;
  const Padding padding = PaddingFor(a.height, a.width, stride_, minSize_);
  torch::Tensor imageA = Pad(ToTensor(a), padding);
  torch::Tensor imageB = Pad(ToTensor(b), padding);
  if (refinement.tolerance > 0 || refinement.onTheFly) {
    if (!HasRaftEntryPoints())
      throw FlowError(ErrorCode::Inference,
                      "a tolerance or on-the-fly correlation needs a RAFT export (refinement entry points)");
    // The same computation as forward(), through the entry points, so that refinement can stop early.
    auto encode = module_.get_method("encode_features");
    // Large frames (on the fly) are encoded one at a time: the encoder's activations, not the correlation, are then
    // the peak, and a batch of two doubles them. Instance norm is per image, so the features are the same.
    std::vector<torch::Tensor> fmaps =
        refinement.onTheFly ? std::vector<torch::Tensor>{encode({imageA}).toTensor(), encode({imageB}).toTensor()}
                            : encode({torch::cat({imageA, imageB}, 0)}).toTensor().chunk(2, 0);
    auto context = module_.get_method("encode_context")({imageA}).toTuple();
    auto [flow, low, ran] = Refine(fmaps[0], fmaps[1], context, refinement, torch::jit::IValue());
    FlowResult result = Crop(flow, padding);
    result.iterations = ran;
    return result;
  }
  std::vector<torch::jit::IValue> inputs{imageA, imageB, static_cast<int64_t>(refinement.iterations),
                                         torch::jit::IValue()};
  FlowResult result = Crop(module_.forward(inputs).toTensor(), padding);
  result.iterations = HasRaftEntryPoints() ? refinement.iterations : 0;
  return result;
}

std::tuple<torch::Tensor, torch::Tensor, int> TorchModel::Refine(const torch::Tensor& fmap1, const torch::Tensor& fmap2,
                                                                 const c10::intrusive_ptr<c10::ivalue::Tuple>& context,
                                                                 const Refinement& refinement,
                                                                 const torch::jit::IValue& init) {
  const auto& net = context->elements()[0];
  const auto& inp = context->elements()[1];
  const auto iterations = static_cast<int64_t>(refinement.iterations);
  if (refinement.tolerance > 0) {
    if (!module_.find_method("refine_adaptive")) {
      throw FlowError(ErrorCode::Inference,
                      "this export has no adaptive refinement (refine_adaptive): re-export it with this version, "
                      "or leave out the tolerance");
    }
    std::vector<torch::jit::IValue> args{fmap1, fmap2, net, inp, iterations, refinement.tolerance, init};
    if (refinement.onTheFly) args.push_back(OnTheFlyArgument("refine_adaptive", args.size()));
    auto out = module_.get_method("refine_adaptive")(args).toTuple();
    const int64_t ran = out->elements()[2].toInt();
    if (ran < 1 || ran > refinement.iterations) {
      throw FlowError(ErrorCode::Inference, "the export reported " + std::to_string(ran) + " iterations of at most " +
                                                std::to_string(refinement.iterations));
    }
    return {out->elements()[0].toTensor(), out->elements()[1].toTensor(), static_cast<int>(ran)};
  }
  std::vector<torch::jit::IValue> args{fmap1, fmap2, net, inp, iterations, init};
  if (refinement.onTheFly) args.push_back(OnTheFlyArgument("refine", args.size()));
  auto out = module_.get_method("refine")(args).toTuple();
  return {out->elements()[0].toTensor(), out->elements()[1].toTensor(), refinement.iterations};
}

torch::jit::IValue TorchModel::OnTheFlyArgument(const std::string& method, size_t position) {
  // Exports made before on-the-fly correlation existed have no such argument; their method is one argument short.
  const auto& arguments = module_.get_method(method).function().getSchema().arguments();
  // The schema counts `self` first.
  if (arguments.size() <= position + 1 || arguments[position + 1].name() != "on_the_fly") {
    throw FlowError(ErrorCode::Inference, "this export has no on-the-fly correlation (" + method +
                                              " takes no on_the_fly): re-export it with this version, or use "
                                              "correlation 'all-pairs'");
  }
  return true;
}

bool TorchModel::HasRaftEntryPoints() {
  return module_.find_method("encode_features") && module_.find_method("encode_context") &&
         module_.find_method("refine") && module_.find_method("forward_project");
}

FlowResult TorchModel::StreamStep(uint32_t stream, const Frame& frame, const Refinement& refinement,
                                  const StreamOptions& options) {
  if (!loaded_) throw FlowError(ErrorCode::Disposed, "the model has been disposed");
  c10::InferenceMode inference;
  const Padding padding = PaddingFor(frame.height, frame.width, stride_, minSize_);
  torch::Tensor image = Pad(ToTensor(frame), padding);
  auto found = streams_.find(stream);
  if (found != streams_.end() && (found->second.width != frame.width || found->second.height != frame.height)) {
    throw FlowError(ErrorCode::InputSize, "frame size changed within a video from " +
                                              std::to_string(found->second.width) + "x" +
                                              std::to_string(found->second.height) + " to " +
                                              std::to_string(frame.width) + "x" + std::to_string(frame.height));
  }
  const bool raft = HasRaftEntryPoints();
  const bool reuse = raft && options.reuseFeatures;
  torch::Tensor features;
  if (reuse) features = module_.get_method("encode_features")({image}).toTensor();

  FlowResult result;
  if (found != streams_.end()) {
    StreamState& previous = found->second;
    if (raft && (reuse || options.warmStart)) {
      torch::Tensor fmap1 =
          reuse ? previous.features : module_.get_method("encode_features")({previous.image}).toTensor();
      torch::Tensor fmap2 = reuse ? features : module_.get_method("encode_features")({image}).toTensor();
      auto context = module_.get_method("encode_context")({previous.image}).toTuple();
      torch::jit::IValue init;
      if (options.warmStart && previous.lowFlow.defined()) {
        init = module_.get_method("forward_project")({previous.lowFlow}).toTensor();
      }
      auto [flow, low, ran] = Refine(fmap1, fmap2, context, refinement, init);
      previous.lowFlow = low;
      result = Crop(flow, padding);
      result.iterations = ran;
    } else if (raft && (refinement.tolerance > 0 || refinement.onTheFly)) {
      torch::Tensor fmap1 = module_.get_method("encode_features")({previous.image}).toTensor();
      torch::Tensor fmap2 = module_.get_method("encode_features")({image}).toTensor();
      auto context = module_.get_method("encode_context")({previous.image}).toTuple();
      auto [flow, low, ran] = Refine(fmap1, fmap2, context, refinement, torch::jit::IValue());
      result = Crop(flow, padding);
      result.iterations = ran;
    } else {
      std::vector<torch::jit::IValue> inputs{previous.image, image, static_cast<int64_t>(refinement.iterations),
                                             torch::jit::IValue()};
      result = Crop(module_.forward(inputs).toTensor(), padding);
      result.iterations = raft ? refinement.iterations : 0;
    }
  }
  StreamState& state = streams_[stream];
  state.image = image;
  state.features = features;
  state.width = frame.width;
  state.height = frame.height;
  return result;
}

void TorchModel::StreamEnd(uint32_t stream) { streams_.erase(stream); }
