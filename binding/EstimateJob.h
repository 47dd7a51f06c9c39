// One flow estimate between two frames whose pixels were copied on the JS thread.
#pragma once

#include "Job.h"

class EstimateJob : public Job {
 public:
  EstimateJob(Napi::Env env, uint32_t id, Frame a, Frame b, Refinement refinement)
      : Job(env, id), a_(std::move(a)), b_(std::move(b)), refinement_(refinement) {}

 protected:
  void Execute(TorchModel& model) override {
    result_ = model.Estimate(a_, b_, refinement_);
    // The pixels are not needed any more; free them before the result travels back.
    a_.bytes = {};
    b_.bytes = {};
  }

  Napi::Value Result(Napi::Env env) override { return FlowObject(env, std::move(result_)); }

 public:
  // { width, height, data: Float32Array } owning the result's memory without a copy.
  static Napi::Object FlowObject(Napi::Env env, FlowResult result) {
    auto* data = new std::vector<float>(std::move(result.data));
    Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(
        env, data->data(), data->size() * sizeof(float),
        [](Napi::Env, void*, std::vector<float>* owned) { delete owned; }, data);
    Napi::Object out = Napi::Object::New(env);
    out.Set("width", result.width);
    out.Set("height", result.height);
    out.Set("iterations", result.iterations);
    out.Set("data", Napi::Float32Array::New(env, data->size(), buffer, 0));
    return out;
  }

 private:
  Frame a_;
  Frame b_;
  Refinement refinement_;
  FlowResult result_;
};
