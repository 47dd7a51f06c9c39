// One frame of a video stream: flow from the stream's previous frame, reusing what the worker kept of it.
#pragma once

#include "EstimateJob.h"

class StreamStepJob : public Job {
 public:
  StreamStepJob(Napi::Env env, uint32_t id, uint32_t stream, Frame frame, Refinement refinement, StreamOptions options)
      : Job(env, id), stream_(stream), frame_(std::move(frame)), refinement_(refinement), options_(options) {}

 protected:
  void Execute(TorchModel& model) override {
    result_ = model.StreamStep(stream_, frame_, refinement_, options_);
    frame_.bytes = {};
  }

  Napi::Value Result(Napi::Env env) override {
    if (result_.width == 0) return env.Null();  // the first frame has no predecessor
    return EstimateJob::FlowObject(env, std::move(result_));
  }

 private:
  uint32_t stream_;
  Frame frame_;
  Refinement refinement_;
  StreamOptions options_;
  FlowResult result_;
};
