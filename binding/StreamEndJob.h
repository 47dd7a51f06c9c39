// Forgets what a video stream kept on the worker (the previous frame, its features and flow).
#pragma once

#include "Job.h"

class StreamEndJob : public Job {
 public:
  StreamEndJob(Napi::Env env, uint32_t stream) : Job(env, 0), stream_(stream) {}

 protected:
  void Execute(TorchModel& model) override { model.StreamEnd(stream_); }
  Napi::Value Result(Napi::Env env) override { return env.Undefined(); }

 private:
  uint32_t stream_;
};
