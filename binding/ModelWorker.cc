#include "ModelWorker.h"

#include "CachingCpuAllocator.h"

ModelWorker::ModelWorker(Napi::Env env) : env_(env) {
  channel_ = Channel::New(env, "optical-flow model", 0, 1, this);
  channel_.Unref(env);  // an idle model must not keep the process alive
  thread_ = std::thread([this] { Loop(); });
}

ModelWorker::~ModelWorker() { Shutdown(); }

bool ModelWorker::Push(std::unique_ptr<Job>& job) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closing_) return false;
    queue_.push_back(std::move(job));
  }
  if (inFlight_++ == 0) channel_.Ref(env_);
  wake_.notify_one();
  return true;
}

std::unique_ptr<Job> ModelWorker::Cancel(uint32_t id) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = queue_.begin(); it != queue_.end(); ++it) {
    if ((*it)->id() == id) {
      auto job = std::move(*it);
      queue_.erase(it);
      return job;
    }
  }
  return nullptr;
}

std::vector<std::unique_ptr<Job>> ModelWorker::Close(std::unique_ptr<Job> last) {
  std::vector<std::unique_ptr<Job>> dropped;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (auto& job : queue_) dropped.push_back(std::move(job));
    queue_.clear();
    queue_.push_back(std::move(last));
    closing_ = true;
  }
  if (inFlight_++ == 0) channel_.Ref(env_);
  wake_.notify_one();
  return dropped;
}

void ModelWorker::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    closing_ = true;
    queue_.clear();
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void ModelWorker::Loop() {
  while (true) {
    std::unique_ptr<Job> job;
    bool last = false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      // Cached tensor memory is kept while work keeps coming, and handed back once this model has been idle a while.
      if (!wake_.wait_for(lock, kIdleBeforeTrim, [this] { return stopping_ || !queue_.empty(); })) {
        lock.unlock();
        if (auto* allocator = CachingCpuAllocator::Installed()) allocator->Trim();
        lock.lock();
      }
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) break;
      job = std::move(queue_.front());
      queue_.pop_front();
      last = closing_ && queue_.empty();
    }
    job->Run(model_);
    Job* raw = job.release();
    if (channel_.BlockingCall(raw) != napi_ok) delete raw;  // the environment is going away
    if (last) break;
  }
  model_.Release();
  channel_.Release();
}

void ModelWorker::Deliver(Napi::Env env, Napi::Function, ModelWorker* self, Job* job) {
  std::unique_ptr<Job> owned(job);
  if (env != nullptr) owned->Complete(env);
  if (self != nullptr) self->Finished();
}

void ModelWorker::Finished() {
  if (inFlight_ > 0 && --inFlight_ == 0) channel_.Unref(env_);
}
