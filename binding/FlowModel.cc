#include "FlowModel.h"

#include <cstring>

#include "DisposeJob.h"
#include "EstimateJob.h"
#include "LoadJob.h"
#include "StreamEndJob.h"
#include "StreamStepJob.h"

namespace {

Frame CopyFrame(Napi::Env env, const Napi::Value& value) {
  if (!value.IsObject()) throw Napi::TypeError::New(env, "internal: frame must be an object");
  Napi::Object object = value.As<Napi::Object>();
  Frame frame;
  frame.width = object.Get("width").As<Napi::Number>().Int32Value();
  frame.height = object.Get("height").As<Napi::Number>().Int32Value();
  frame.channels = object.Get("channels").As<Napi::Number>().Int32Value();
  const std::string type = object.Get("type").As<Napi::String>();
  const std::string order = object.Get("order").As<Napi::String>();
  frame.type = type == "float32" ? PixelType::Float32 : PixelType::UInt8;
  if (order == "rgb")
    frame.order = ChannelOrder::RGB;
  else if (order == "bgr")
    frame.order = ChannelOrder::BGR;
  else if (order == "rgba")
    frame.order = ChannelOrder::RGBA;
  else if (order == "bgra")
    frame.order = ChannelOrder::BGRA;
  else
    frame.order = ChannelOrder::Gray;
  Napi::Value data = object.Get("data");
  if (!data.IsTypedArray()) throw Napi::TypeError::New(env, "internal: frame data must be a typed array");
  Napi::TypedArray array = data.As<Napi::TypedArray>();
  const size_t elementSize = frame.type == PixelType::Float32 ? 4 : 1;
  const size_t expected = static_cast<size_t>(frame.width) * frame.height * frame.channels * elementSize;
  if (frame.width <= 0 || frame.height <= 0 || array.ByteLength() < expected) {
    throw Napi::RangeError::New(env, "internal: frame data is smaller than width * height * channels");
  }
  const uint8_t* source = static_cast<const uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
  frame.bytes.assign(source, source + expected);
  return frame;
}

// The Refinement struct from its object, as TypeScript's NativeRefinement spells it.
Refinement CopyRefinement(Napi::Env env, const Napi::Value& value) {
  if (!value.IsObject()) throw Napi::TypeError::New(env, "internal: refinement must be an object");
  const Napi::Object object = value.As<Napi::Object>();
  Refinement refinement;
  refinement.iterations = object.Get("iterations").As<Napi::Number>().Int32Value();
  refinement.tolerance = object.Get("tolerance").As<Napi::Number>().DoubleValue();
  refinement.onTheFly = object.Get("onTheFly").ToBoolean();
  return refinement;
}

Napi::Object RequestObject(Napi::Env env, const Napi::Value& value, const char* what) {
  if (!value.IsObject()) throw Napi::TypeError::New(env, std::string("internal: ") + what + " takes one object");
  return value.As<Napi::Object>();
}

// What a queued request looks like to TypeScript: its id (for cancel) and its promise.
Napi::Object Request(Napi::Env env, uint32_t id, Napi::Value promise) {
  Napi::Object out = Napi::Object::New(env);
  out.Set("id", id);
  out.Set("promise", promise);
  return out;
}

}  // namespace

Napi::Function FlowModel::Init(Napi::Env env) {
  return DefineClass(env, "FlowModel",
                     {
                         InstanceMethod<&FlowModel::Load>("load"),
                         InstanceMethod<&FlowModel::Estimate>("estimate"),
                         InstanceMethod<&FlowModel::StreamStep>("streamStep"),
                         InstanceMethod<&FlowModel::StreamEnd>("streamEnd"),
                         InstanceMethod<&FlowModel::Cancel>("cancel"),
                         InstanceMethod<&FlowModel::Dispose>("dispose"),
                         InstanceAccessor<&FlowModel::Pending>("pending"),
                     });
}

FlowModel::FlowModel(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FlowModel>(info) {
  queueLimit_ = info[0].As<Napi::Number>().Uint32Value();
  worker_ = std::make_unique<ModelWorker>(info.Env());
  napi_add_env_cleanup_hook(info.Env(), &FlowModel::OnEnvironmentExit, this);
}

FlowModel::~FlowModel() {
  napi_remove_env_cleanup_hook(Env(), &FlowModel::OnEnvironmentExit, this);
  worker_.reset();
}

void FlowModel::OnEnvironmentExit(void* self) {
  auto* model = static_cast<FlowModel*>(self);
  if (model->worker_) model->worker_->Shutdown();
}

Napi::Value FlowModel::Queue(Napi::Env env, std::unique_ptr<Job> job, bool bounded) {
  Napi::Promise promise = job->Promise();
  if ((bounded && worker_->InFlight() >= queueLimit_) || !worker_->Push(job)) {
    job->Reject(env, disposed_ ? ErrorCode::Disposed : ErrorCode::QueueFull,
                disposed_ ? "the model has been disposed" : "the model's request queue is full");
  }
  return promise;
}

Napi::Value FlowModel::Load(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (loadQueued_) throw Napi::Error::New(env, "internal: load called twice");
  loadQueued_ = true;
  // The options were validated in TypeScript; they are copied into plain values here, on the main thread.
  const Napi::Object in = info[0].As<Napi::Object>();
  LoadOptions options;
  options.modelPath = in.Get("modelPath").As<Napi::String>();
  if (in.Get("weightsPath").IsString()) options.weightsPath = in.Get("weightsPath").As<Napi::String>();
  if (in.Get("keyFormats").IsArray()) {
    const Napi::Array formats = in.Get("keyFormats").As<Napi::Array>();
    for (uint32_t i = 0; i < formats.Length(); ++i) {
      const Napi::Object format = formats.Get(i).As<Napi::Object>();
      KeyFormat keyFormat;
      keyFormat.name = format.Get("name").As<Napi::String>();
      const Napi::Array rules = format.Get("rules").As<Napi::Array>();
      for (uint32_t r = 0; r < rules.Length(); ++r) {
        const Napi::Array rule = rules.Get(r).As<Napi::Array>();
        keyFormat.rules.emplace_back(rule.Get(0u).As<Napi::String>(), rule.Get(1u).As<Napi::String>());
      }
      options.keyFormats.push_back(std::move(keyFormat));
    }
  }
  if (in.Get("randomSeed").IsNumber()) {
    options.randomWeights = true;
    options.randomSeed = static_cast<uint64_t>(in.Get("randomSeed").As<Napi::Number>().Int64Value());
  }
  options.inputBgr = in.Get("inputBgr").ToBoolean();
  options.device = in.Get("device").As<Napi::String>();
  options.threads = in.Get("threads").As<Napi::Number>().Int32Value();
  options.precision = in.Get("precision").As<Napi::String>();
  return Queue(env, std::make_unique<LoadJob>(env, std::move(options)), false);
}

Napi::Value FlowModel::Estimate(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Napi::Object request = RequestObject(env, info[0], "estimate");
  Frame a = CopyFrame(env, request.Get("frameA"));
  Frame b = CopyFrame(env, request.Get("frameB"));
  const Refinement refinement = CopyRefinement(env, request.Get("refinement"));
  const uint32_t id = nextId_++;
  return Request(env, id,
                 Queue(env, std::make_unique<EstimateJob>(env, id, std::move(a), std::move(b), refinement), true));
}

Napi::Value FlowModel::StreamStep(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const Napi::Object request = RequestObject(env, info[0], "streamStep");
  const uint32_t stream = request.Get("stream").As<Napi::Number>().Uint32Value();
  Frame frame = CopyFrame(env, request.Get("frame"));
  const Refinement refinement = CopyRefinement(env, request.Get("refinement"));
  StreamOptions options;
  options.reuseFeatures = request.Get("reuseFeatures").ToBoolean();
  options.warmStart = request.Get("warmStart").ToBoolean();
  const uint32_t id = nextId_++;
  return Request(
      env, id,
      Queue(env, std::make_unique<StreamStepJob>(env, id, stream, std::move(frame), refinement, options), true));
}

Napi::Value FlowModel::StreamEnd(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  return Queue(env, std::make_unique<StreamEndJob>(env, info[0].As<Napi::Number>().Uint32Value()), false);
}

Napi::Value FlowModel::Cancel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto job = worker_->Cancel(info[0].As<Napi::Number>().Uint32Value());
  if (!job) return Napi::Boolean::New(env, false);
  job->Reject(env, ErrorCode::Aborted, "the request was aborted before it started");
  worker_->Forget();
  return Napi::Boolean::New(env, true);
}

Napi::Value FlowModel::Dispose(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (disposed_) {
    auto done = Napi::Promise::Deferred::New(env);
    done.Resolve(env.Undefined());
    return done.Promise();
  }
  disposed_ = true;
  auto last = std::make_unique<DisposeJob>(env);
  Napi::Promise promise = last->Promise();
  for (auto& job : worker_->Close(std::move(last))) {
    job->Reject(env, ErrorCode::Disposed, "the model was disposed before this request started");
    worker_->Forget();
  }
  return promise;
}

Napi::Value FlowModel::Pending(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(worker_->InFlight()));
}
