// Loads the TorchScript export (and optional weights) on the worker thread, so the JS thread never waits.
#pragma once

#include "Job.h"

class LoadJob : public Job {
 public:
  LoadJob(Napi::Env env, LoadOptions options) : Job(env, 0), options_(std::move(options)) {}

 protected:
  void Execute(TorchModel& model) override { info_ = model.Load(options_); }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object out = Napi::Object::New(env);
    out.Set("metadata", info_.metadataJson);
    out.Set("device", info_.device);
    out.Set("precision", info_.precision);
    out.Set("stride", info_.stride);
    out.Set("minSize", info_.minSize);
    out.Set("defaultIterations", info_.defaultIterations);
    if (info_.divFlow > 0) out.Set("divFlow", info_.divFlow);
    Napi::Array loaded = Napi::Array::New(env, info_.weightsLoaded.size());
    for (size_t i = 0; i < info_.weightsLoaded.size(); ++i) loaded.Set(i, info_.weightsLoaded[i]);
    out.Set("weightsLoaded", loaded);
    if (!info_.weightsFormat.empty()) out.Set("weightsFormat", info_.weightsFormat);
    return out;
  }

 private:
  LoadOptions options_;
  ModelInfo info_;
};
