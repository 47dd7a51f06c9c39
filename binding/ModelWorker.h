// The model's own thread and FIFO queue. Requests never occupy libuv's shared pool (which fs and dns need),
// and one model runs one request at a time, in order.
#pragma once

#include <napi.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "Job.h"
#include "TorchModel.h"

class ModelWorker {
 public:
  explicit ModelWorker(Napi::Env env);
  ~ModelWorker();

  // JS thread. False (and `job` left with the caller) once closing.
  bool Push(std::unique_ptr<Job>& job);
  // JS thread. Takes a job out if it has not started.
  std::unique_ptr<Job> Cancel(uint32_t id);
  // JS thread. Takes every queued job out, queues `last` after the running one, and lets the thread end.
  std::vector<std::unique_ptr<Job>> Close(std::unique_ptr<Job> last);
  // JS thread, at environment teardown: drops queued jobs and waits for the running one.
  void Shutdown();

  // Jobs queued or running (JS thread).
  size_t InFlight() const { return inFlight_; }
  // JS thread: a job handed back by Cancel or Close counts as done.
  void Forget() { Finished(); }

 private:
  void Loop();
  void Finished();
  static void Deliver(Napi::Env env, Napi::Function, ModelWorker* self, Job* job);

  static constexpr std::chrono::seconds kIdleBeforeTrim{2};

  using Channel = Napi::TypedThreadSafeFunction<ModelWorker, Job, &ModelWorker::Deliver>;

  Napi::Env env_;
  TorchModel model_;
  Channel channel_;
  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<Job>> queue_;
  size_t inFlight_ = 0;  // JS thread only
  bool closing_ = false;
  bool stopping_ = false;
};
