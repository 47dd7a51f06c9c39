#include "StateDictReader.h"

#include <cstring>
#include <fstream>
#include <memory>
#include <new>

#include "FlowError.h"
#include "Unpickler.h"
#include "ZipArchive.h"

namespace {

constexpr uint64_t kMaxFileBytes = uint64_t(8) << 30;  // the largest published weights are about 160 MB

[[noreturn]] void Fail(const std::string& path, const std::string& why) {
  throw FlowError(ErrorCode::Weights, "cannot read weights file '" + path + "': " + why);
}

bool IsTensorDict(const Unpickler& pickle, const Value& v) {
  if (v.kind != Value::Dict || v.items.empty()) return false;
  for (size_t k = 0; k < v.items.size(); k += 2) {
    if (pickle.At(v.items[k]).kind != Value::String || pickle.At(v.items[k + 1]).kind != Value::Tensor) return false;
  }
  return true;
}

uint64_t FileSize(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) throw FlowError(ErrorCode::Weights, "cannot open weights file '" + path + "'");
  const std::streamoff size = in.tellg();
  if (size < 0) Fail(path, "its size cannot be read");
  return static_cast<uint64_t>(size);
}

StateDict Build(const std::string& path, const Unpickler& pickle, Ref root,
                const std::map<std::string, torch::Tensor>& storages) {
  StateDict out;
  const Value* dict = &pickle.At(root);
  if (!IsTensorDict(pickle, *dict) && dict->kind == Value::Dict) {
    const Value& top = *dict;
    for (size_t k = 0; k < top.items.size(); k += 2) {
      const Value& key = pickle.At(top.items[k]);
      const Value& value = pickle.At(top.items[k + 1]);
      if (key.kind != Value::String) continue;
      if (value.kind == Value::Float) out.scalars[key.s] = value.f;
      if (value.kind == Value::Int) out.scalars[key.s] = static_cast<double>(value.i);
    }
    for (const char* name : {"state_dict", "model", "model_state_dict"}) {
      for (size_t k = 0; k < top.items.size(); k += 2) {
        const Value& key = pickle.At(top.items[k]);
        const Value& value = pickle.At(top.items[k + 1]);
        if (key.kind == Value::String && key.s == name && IsTensorDict(pickle, value)) dict = &value;
      }
      if (dict != &top) break;
    }
  }
  if (!IsTensorDict(pickle, *dict)) Fail(path, "it holds no state dict (a mapping of names to tensors)");

  for (size_t k = 0; k < dict->items.size(); k += 2) {
    const std::string& name = pickle.At(dict->items[k]).s;
    const TensorSpec& spec = pickle.Spec(pickle.At(dict->items[k + 1]));
    const Value& storageValue = pickle.At(spec.storage);
    const torch::Tensor& storage = storages.at(storageValue.s);
    int64_t extent = 0;
    if (!ViewExtent(spec, &extent) || extent > storage.numel()) {
      Fail(path, "tensor " + name + " does not fit its storage " + storageValue.s + " (" +
                     std::to_string(storage.numel()) + " elements)");
    }
    if (out.tensors.count(name)) Fail(path, "tensor " + name + " appears twice");
    out.names.push_back(name);
    out.tensors[name] = storage.as_strided(spec.sizes, spec.strides, spec.offset);
  }
  return out;
}

// The element count a storage's bytes hold, refusing sizes that are not whole elements or disagree with the pickle.
int64_t StorageElements(const std::string& path, const std::string& key, const Value& storage, uint64_t bytes) {
  const uint64_t item = c10::elementSize(storage.dtype);
  if (bytes % item != 0) {
    Fail(path, "storage " + key + " holds " + std::to_string(bytes) + " bytes, not a whole number of " +
                   std::to_string(item) + "-byte elements");
  }
  if (bytes / item != static_cast<uint64_t>(storage.i)) {
    Fail(path, "storage " + key + " holds " + std::to_string(bytes / item) + " elements, the checkpoint says " +
                   std::to_string(storage.i));
  }
  return storage.i;
}

StateDict ReadZip(const std::string& path) {
  ZipArchive zip(path, ErrorCode::Weights, "weights file");
  if (zip.Has("constants.pkl")) {
    Fail(path, "this is a TorchScript model, not a state dict: pass it as the model, not as weights");
  }
  if (!zip.Has("data.pkl")) Fail(path, "no data.pkl record (not a torch.save file)");
  std::string pickleBytes(zip.Get("data.pkl").size, '\0');
  zip.Read("data.pkl", pickleBytes.data());
  Unpickler pickle(path, pickleBytes.data(), pickleBytes.size());
  const Ref root = pickle.Run();
  std::map<std::string, torch::Tensor> storages;
  for (const auto& [key, ref] : pickle.storages()) {
    const std::string record = "data/" + key;
    if (!zip.Has(record)) Fail(path, "missing storage record " + record);
    const Value& storage = pickle.At(ref);
    const int64_t count = StorageElements(path, key, storage, zip.Get(record).size);
    torch::Tensor tensor = torch::empty({count}, torch::TensorOptions().dtype(storage.dtype));
    zip.Read(record, tensor.data_ptr());  // straight into the tensor, checked against its CRC-32
    storages[key] = tensor;
  }
  return Build(path, pickle, root, storages);
}

StateDict ReadLegacy(const std::string& path, uint64_t size) {
  // Magic number, protocol version, system info, the object, the storage keys, then for each key its element
  // count (int64) and raw bytes.
  std::string file(size, '\0');
  std::ifstream in(path, std::ios::binary);
  in.read(file.data(), static_cast<std::streamsize>(size));
  if (static_cast<uint64_t>(in.gcount()) != size) Fail(path, "it could not be read whole");
  size_t pos = 0;
  std::vector<std::unique_ptr<Unpickler>> pickles;
  auto next = [&]() -> const Value& {
    pickles.push_back(std::make_unique<Unpickler>(path, file.data() + pos, file.size() - pos));
    const Ref ref = pickles.back()->Run();
    pos += pickles.back()->Position();
    return pickles.back()->At(ref);
  };
  static const std::string kMagic("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10);  // 0x1950a86a20f9469cfc6c
  const Value& magic = next();
  if (magic.kind != Value::Object || magic.s != kMagic) Fail(path, "not a PyTorch checkpoint (bad magic number)");
  next();  // protocol version
  next();  // system info
  pickles.push_back(std::make_unique<Unpickler>(path, file.data() + pos, file.size() - pos));
  Unpickler& object = *pickles.back();
  const Ref root = object.Run();
  pos += object.Position();
  const Value& keys = next();
  if (keys.kind != Value::List && keys.kind != Value::Tuple) Fail(path, "malformed storage key list");
  const Unpickler& keyPickle = *pickles.back();
  std::map<std::string, torch::Tensor> storages;
  for (Ref keyRef : keys.items) {
    const std::string& key = keyPickle.At(keyRef).s;
    auto it = object.storages().find(key);
    if (it == object.storages().end()) Fail(path, "storage " + key + " is listed but never used");
    if (storages.count(key)) Fail(path, "storage " + key + " is listed twice");
    if (file.size() - pos < 8) Fail(path, "unexpected end of data (truncated file?)");
    int64_t count = 0;
    std::memcpy(&count, file.data() + pos, 8);
    pos += 8;
    const Value& storage = object.At(it->second);
    uint64_t bytes = 0;
    if (count < 0 || __builtin_mul_overflow(static_cast<uint64_t>(count), c10::elementSize(storage.dtype), &bytes) ||
        bytes > file.size() - pos) {
      Fail(path, "storage " + key + " declares " + std::to_string(count) + " elements, more than the file holds");
    }
    StorageElements(path, key, storage, bytes);
    torch::Tensor tensor = torch::empty({count}, torch::TensorOptions().dtype(storage.dtype));
    std::memcpy(tensor.data_ptr(), file.data() + pos, bytes);
    pos += bytes;
    storages[key] = tensor;
  }
  for (const auto& [key, ref] : object.storages()) {
    if (!storages.count(key)) Fail(path, "storage " + key + " is used but missing (truncated file?)");
  }
  return Build(path, object, root, storages);
}

}  // namespace

StateDict StateDictReader::Read(const std::string& path) {
  try {
    const uint64_t size = FileSize(path);
    if (size > kMaxFileBytes) Fail(path, "it is larger than " + std::to_string(kMaxFileBytes >> 30) + " GB");
    char head[2] = {0, 0};
    std::ifstream(path, std::ios::binary).read(head, 2);
    if (size >= 4 && head[0] == 'P' && head[1] == 'K') return ReadZip(path);
    if (size >= 2 && static_cast<uint8_t>(head[0]) == 0x80) return ReadLegacy(path, size);
    Fail(path, "not a PyTorch checkpoint (neither a zip archive nor a pickle stream)");
  } catch (const FlowError&) { throw; } catch (const c10::Error& e) {
    Fail(path, e.what_without_backtrace());
  } catch (const std::bad_alloc&) { Fail(path, "out of memory while reading it"); } catch (const std::exception& e) {
    Fail(path, e.what());
  }
}
