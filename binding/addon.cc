// Module entry: registers the classes and reports what this LibTorch build can do.
#include <napi.h>

#include "CachingCpuAllocator.h"
#include "Device.h"
#include "FlowError.h"
#include "FlowModel.h"
#include "LibTorch.h"
#include "Padding.h"
#include "TorchModel.h"

namespace {

Napi::Value Capabilities(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("torchVersion", LibTorch::RuntimeVersion());
  out.Set("torchHeadersVersion", LibTorch::HeadersVersion());
  out.Set("torchLibrary", LibTorch::LibraryPath());
  out.Set("cudaBuild", LibTorch::BuiltWithCuda());
  out.Set("cuda", Device::CudaAvailable());
  out.Set("cudaDevices", Device::CudaDeviceCount());
  return out;
}

// The addon's padding for a frame size, so that tests can hold it against the TypeScript and Python definitions.
Napi::Value PaddingForFrame(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  for (size_t i = 0; i < 4; ++i) {
    if (!info[i].IsNumber())
      throw Napi::TypeError::New(env, "paddingFor(height, width, stride, minSize) takes numbers");
  }
  const int stride = info[2].As<Napi::Number>().Int32Value();
  if (stride < 1) throw Napi::RangeError::New(env, "paddingFor: stride must be at least 1");
  const Padding p = PaddingFor(info[0].As<Napi::Number>().Int32Value(), info[1].As<Napi::Number>().Int32Value(), stride,
                               info[3].As<Napi::Number>().Int32Value());
  Napi::Object out = Napi::Object::New(env);
  out.Set("top", p.top);
  out.Set("left", p.left);
  out.Set("paddedHeight", p.paddedHeight);
  out.Set("paddedWidth", p.paddedWidth);
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  // Headers of one LibTorch with the libraries of another (two installations on one machine) break in ways that
  // are hard to trace: refuse to load.
  const std::string runtime = LibTorch::RuntimeVersion(), headers = LibTorch::HeadersVersion();
  const auto majorMinor = [](const std::string& v) { return v.substr(0, v.find('.', v.find('.') + 1)); };
  if (!runtime.empty() && majorMinor(runtime) != majorMinor(headers)) {
    throw Napi::Error::New(env, "this addon was compiled against LibTorch " + headers + " but loaded LibTorch " +
                                    runtime + " from " + LibTorch::LibraryPath() +
                                    ": rebuild it against one installation (LIBTORCH=<prefix>)");
  }
  CachingCpuAllocator::Install();
  exports.Set("FlowModel", FlowModel::Init(env));
  exports.Set("capabilities", Napi::Function::New(env, Capabilities, "capabilities"));
  exports.Set("paddingFor", Napi::Function::New(env, PaddingForFrame, "paddingFor"));
  Napi::Array codes = Napi::Array::New(env, kErrorCodeNames.size());
  for (size_t i = 0; i < kErrorCodeNames.size(); ++i) codes.Set(static_cast<uint32_t>(i), kErrorCodeNames[i]);
  exports.Set("errorCodes", codes);
  exports.Set("maxIterations", Napi::Number::New(env, kMaxIterations));
  return exports;
}

}  // namespace

NODE_API_MODULE(optical_flow, Init)
