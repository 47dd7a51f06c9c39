// The JavaScript-facing model: validates nothing (TypeScript did), copies inputs into plain structs and
// queues them on the model's worker.
#pragma once

#include <napi.h>

#include <memory>

#include "ModelWorker.h"

class FlowModel : public Napi::ObjectWrap<FlowModel> {
 public:
  static Napi::Function Init(Napi::Env env);
  explicit FlowModel(const Napi::CallbackInfo& info);
  ~FlowModel() override;

 private:
  Napi::Value Load(const Napi::CallbackInfo& info);
  Napi::Value Estimate(const Napi::CallbackInfo& info);
  Napi::Value StreamStep(const Napi::CallbackInfo& info);
  Napi::Value StreamEnd(const Napi::CallbackInfo& info);
  Napi::Value Cancel(const Napi::CallbackInfo& info);
  Napi::Value Dispose(const Napi::CallbackInfo& info);
  Napi::Value Pending(const Napi::CallbackInfo& info);

  Napi::Value Queue(Napi::Env env, std::unique_ptr<Job> job, bool bounded);
  static void OnEnvironmentExit(void* self);

  std::unique_ptr<ModelWorker> worker_;
  bool disposed_ = false;
  bool loadQueued_ = false;
  uint32_t nextId_ = 1;
  size_t queueLimit_ = 1;  // estimate requests queued or running at once
};
