// The last job of a model: frees the TorchScript module on the thread that used it.
#pragma once

#include "Job.h"

class DisposeJob : public Job {
 public:
  explicit DisposeJob(Napi::Env env) : Job(env, 0) {}

 protected:
  void Execute(TorchModel& model) override { model.Release(); }
  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }
};
