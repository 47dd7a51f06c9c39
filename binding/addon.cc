// Module entry: registers the classes and reports what this LibTorch build can do.
#include <napi.h>

#include <torch/version.h>

#include "Device.h"
#include "FlowModel.h"

namespace {

Napi::Value Capabilities(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Napi::Object out = Napi::Object::New(env);
  out.Set("torchVersion", TORCH_VERSION);
  out.Set("cuda", Device::CudaAvailable());
  out.Set("cudaDevices", Device::CudaDeviceCount());
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("FlowModel", FlowModel::Init(env));
  exports.Set("capabilities", Napi::Function::New(env, Capabilities, "capabilities"));
  return exports;
}

}  // namespace

NODE_API_MODULE(optical_flow, Init)
