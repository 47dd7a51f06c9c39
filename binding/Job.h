// One unit of work on a model: executed on the model's worker thread, completed on the JavaScript thread.
#pragma once

#include <napi.h>

#include <cstdint>
#include <optional>
#include <string>

#include "FlowError.h"
#include "TorchModel.h"

class Job {
 public:
  Job(Napi::Env env, uint32_t id) : id_(id), deferred_(Napi::Promise::Deferred::New(env)) {}
  virtual ~Job() = default;

  uint32_t id() const { return id_; }
  Napi::Promise Promise() const { return deferred_.Promise(); }

  // Worker thread: no N-API calls. Errors are kept and reported by Complete.
  void Run(TorchModel& model) {
    try {
      Execute(model);
    } catch (const FlowError& e) { Fail(e.code(), e.what()); } catch (const c10::Error& e) {
      Fail(ErrorCode::Inference, e.what_without_backtrace());
    } catch (const std::exception& e) { Fail(ErrorCode::Inference, e.what()); }
  }

  // JavaScript thread.
  void Complete(Napi::Env env) {
    if (errorCode_) {
      Reject(env, *errorCode_, errorMessage_);
    } else {
      deferred_.Resolve(Result(env));
    }
  }

  void Reject(Napi::Env env, ErrorCode code, const std::string& message) {
    Napi::Error error = Napi::Error::New(env, message);
    error.Set("code", Napi::String::New(env, kErrorCodeNames[static_cast<size_t>(code)]));
    deferred_.Reject(error.Value());
  }

 protected:
  virtual void Execute(TorchModel& model) = 0;
  virtual Napi::Value Result(Napi::Env env) = 0;

 private:
  void Fail(ErrorCode code, const std::string& message) {
    errorCode_ = code;
    errorMessage_ = message;
  }

  uint32_t id_;
  Napi::Promise::Deferred deferred_;
  std::optional<ErrorCode> errorCode_;
  std::string errorMessage_;
};
