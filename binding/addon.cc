// Module entry: registers the classes and reports what this LibTorch build can do.
#include <napi.h>

#include <torch/version.h>

#include "CachingCpuAllocator.h"
#include "Device.h"
#include "FlowModel.h"
#include "Padding.h"

namespace {

Napi::Value Capabilities(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("torchVersion", TORCH_VERSION);
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
  CachingCpuAllocator::Install();
  exports.Set("FlowModel", FlowModel::Init(env));
  exports.Set("capabilities", Napi::Function::New(env, Capabilities, "capabilities"));
  exports.Set("paddingFor", Napi::Function::New(env, PaddingForFrame, "paddingFor"));
  return exports;
}

}  // namespace

NODE_API_MODULE(optical_flow, Init)
