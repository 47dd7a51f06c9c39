#include "StateDictReader.h"

#include <caffe2/serialize/inline_container.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <memory>
#include <sstream>

#include "FlowError.h"

namespace {

struct Value;
using ValuePtr = std::shared_ptr<Value>;

// Where a tensor's data lives: a storage key, resolved once every storage has been read.
struct TensorSpec {
  std::string storageKey;
  torch::ScalarType dtype = torch::kFloat;
  int64_t offset = 0;
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;
};

struct Value {
  enum Kind { None, Bool, Int, Float, String, Tuple, List, Dict, Global, Storage, Tensor, Mark, Object } kind = None;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;                                       // String; Global: "module.name"; Storage: key
  torch::ScalarType dtype = torch::kFloat;             // Storage
  std::vector<ValuePtr> items;                         // Tuple, List
  std::vector<std::pair<ValuePtr, ValuePtr>> entries;  // Dict, in insertion order
  std::shared_ptr<TensorSpec> tensor;
};

ValuePtr Make(Value::Kind kind) {
  auto v = std::make_shared<Value>();
  v->kind = kind;
  return v;
}

[[noreturn]] void Fail(const std::string& path, const std::string& why) {
  throw FlowError("ERR_WEIGHTS", "cannot read weights file '" + path + "': " + why);
}

torch::ScalarType StorageType(const std::string& path, const std::string& global) {
  static const std::map<std::string, torch::ScalarType> types = {
      {"torch.FloatStorage", torch::kFloat}, {"torch.DoubleStorage", torch::kDouble},
      {"torch.HalfStorage", torch::kHalf},   {"torch.BFloat16Storage", torch::kBFloat16},
      {"torch.LongStorage", torch::kLong},   {"torch.IntStorage", torch::kInt},
      {"torch.ShortStorage", torch::kShort}, {"torch.CharStorage", torch::kChar},
      {"torch.ByteStorage", torch::kByte},   {"torch.BoolStorage", torch::kBool},
  };
  auto it = types.find(global);
  if (it == types.end()) Fail(path, "unsupported storage type " + global);
  return it->second;
}

std::vector<int64_t> Ints(const std::string& path, const ValuePtr& v) {
  if (v->kind != Value::Tuple && v->kind != Value::List) Fail(path, "expected a tuple of sizes");
  std::vector<int64_t> out;
  for (auto& item : v->items) {
    if (item->kind != Value::Int) Fail(path, "expected integer sizes");
    out.push_back(item->i);
  }
  return out;
}

// A pickle virtual machine for the opcodes torch.save produces (protocol 2, and 4 for robustness).
class Unpickler {
 public:
  Unpickler(const std::string& path, const char* data, size_t size) : path_(path), data_(data), size_(size) {}

  ValuePtr Run() {
    while (true) {
      const uint8_t op = U8();
      switch (op) {
        case 0x80: U8(); break;      // PROTO
        case 0x95: Bytes(8); break;  // FRAME
        case '(': stack_.push_back(Make(Value::Mark)); break;
        case '.': return Pop();  // STOP
        case 'N': stack_.push_back(Make(Value::None)); break;
        case 0x88:
        case 0x89: {
          auto v = Make(Value::Bool);
          v->b = op == 0x88;
          stack_.push_back(v);
          break;
        }
        case 'J': {
          auto v = Make(Value::Int);
          v->i = static_cast<int32_t>(LE(4));
          stack_.push_back(v);
          break;
        }
        case 'K': {
          auto v = Make(Value::Int);
          v->i = U8();
          stack_.push_back(v);
          break;
        }
        case 'M': {
          auto v = Make(Value::Int);
          v->i = LE(2);
          stack_.push_back(v);
          break;
        }
        case 0x8a: {  // LONG1
          const size_t n = U8();
          const std::string bytes = Bytes(n);
          if (n > 8) {  // only the legacy format's magic number is this large; keep its bytes
            auto big = Make(Value::Object);
            big->s = bytes;
            stack_.push_back(big);
            break;
          }
          auto v = Make(Value::Int);
          uint64_t raw = 0;
          for (size_t k = 0; k < n; ++k) raw |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[k])) << (8 * k);
          if (n > 0 && n < 8 && (bytes[n - 1] & 0x80)) raw |= ~uint64_t(0) << (8 * n);
          v->i = static_cast<int64_t>(raw);
          stack_.push_back(v);
          break;
        }
        case 'G': {  // BINFLOAT, big-endian
          const std::string bytes = Bytes(8);
          uint64_t raw = 0;
          for (int k = 0; k < 8; ++k) raw = (raw << 8) | static_cast<uint8_t>(bytes[k]);
          auto v = Make(Value::Float);
          std::memcpy(&v->f, &raw, 8);
          stack_.push_back(v);
          break;
        }
        case 'X': PushString(Bytes(LE(4))); break;  // BINUNICODE
        case 0x8c: PushString(Bytes(U8())); break;  // SHORT_BINUNICODE
        case 'T': PushString(Bytes(LE(4))); break;  // BINSTRING
        case 'U': PushString(Bytes(U8())); break;   // SHORT_BINSTRING
        case 'C': PushString(Bytes(U8())); break;   // SHORT_BINBYTES
        case 'B': PushString(Bytes(LE(4))); break;  // BINBYTES
        case ')': stack_.push_back(Make(Value::Tuple)); break;
        case ']': stack_.push_back(Make(Value::List)); break;
        case '}': stack_.push_back(Make(Value::Dict)); break;
        case 't': {
          auto v = Make(Value::Tuple);
          v->items = PopToMark();
          stack_.push_back(v);
          break;
        }
        case 0x85:
        case 0x86:
        case 0x87: {  // TUPLE1..3
          const size_t n = op - 0x84;
          auto v = Make(Value::Tuple);
          if (stack_.size() < n) Fail(path_, "corrupt pickle (stack underflow)");
          v->items.assign(stack_.end() - n, stack_.end());
          stack_.resize(stack_.size() - n);
          stack_.push_back(v);
          break;
        }
        case 'q': memo_[U8()] = Top(); break;           // BINPUT
        case 'r': memo_[LE(4)] = Top(); break;          // LONG_BINPUT
        case 0x94: memo_[memo_.size()] = Top(); break;  // MEMOIZE
        case 'h': stack_.push_back(Memo(U8())); break;
        case 'j': stack_.push_back(Memo(LE(4))); break;
        case 'c': {  // GLOBAL
          auto v = Make(Value::Global);
          const std::string module = Line();
          v->s = module + "." + Line();
          stack_.push_back(v);
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          auto name = Pop();
          auto module = Pop();
          auto v = Make(Value::Global);
          v->s = module->s + "." + name->s;
          stack_.push_back(v);
          break;
        }
        case 'a': {
          auto item = Pop();
          Top()->items.push_back(item);
          break;
        }
        case 'e': {
          auto items = PopToMark();
          auto& list = Top()->items;
          list.insert(list.end(), items.begin(), items.end());
          break;
        }
        case 's': {
          auto value = Pop();
          auto key = Pop();
          Top()->entries.emplace_back(key, value);
          break;
        }
        case 'u': {
          auto items = PopToMark();
          if (items.size() % 2) Fail(path_, "corrupt pickle (odd SETITEMS)");
          auto dict = Top();
          for (size_t k = 0; k < items.size(); k += 2) dict->entries.emplace_back(items[k], items[k + 1]);
          break;
        }
        case 'R': {
          auto args = Pop();
          auto fn = Pop();
          stack_.push_back(Reduce(fn, args));
          break;
        }
        case 0x81: {
          Pop();
          Pop();
          stack_.push_back(Make(Value::Object));
          break;
        }                        // NEWOBJ
        case 'b': Pop(); break;  // BUILD: object state (e.g. a state dict's _metadata)
        case 'Q': stack_.push_back(PersistentLoad(Pop())); break;
        default: {
          std::ostringstream msg;
          msg << "unsupported pickle opcode 0x" << std::hex << int(op) << " at byte " << std::dec << pos_ - 1;
          Fail(path_, msg.str());
        }
      }
    }
  }

  size_t Position() const { return pos_; }
  std::map<std::string, torch::ScalarType> storages;  // key -> dtype, as referenced

 private:
  uint8_t U8() {
    if (pos_ >= size_) Fail(path_, "unexpected end of data (truncated file?)");
    return static_cast<uint8_t>(data_[pos_++]);
  }
  uint64_t LE(int n) {
    uint64_t v = 0;
    for (int k = 0; k < n; ++k) v |= static_cast<uint64_t>(U8()) << (8 * k);
    return v;
  }
  std::string Bytes(size_t n) {
    if (n > size_ - pos_) Fail(path_, "unexpected end of data (truncated file?)");
    std::string out(data_ + pos_, n);
    pos_ += n;
    return out;
  }
  std::string Line() {
    std::string out;
    for (char c = static_cast<char>(U8()); c != '\n'; c = static_cast<char>(U8())) out.push_back(c);
    return out;
  }
  void PushString(std::string s) {
    auto v = Make(Value::String);
    v->s = std::move(s);
    stack_.push_back(v);
  }
  ValuePtr Top() {
    if (stack_.empty()) Fail(path_, "corrupt pickle (empty stack)");
    return stack_.back();
  }
  ValuePtr Pop() {
    auto v = Top();
    stack_.pop_back();
    return v;
  }
  ValuePtr Memo(uint64_t key) {
    auto it = memo_.find(key);
    if (it == memo_.end()) Fail(path_, "corrupt pickle (unknown memo entry)");
    return it->second;
  }
  std::vector<ValuePtr> PopToMark() {
    std::vector<ValuePtr> items;
    while (true) {
      auto v = Pop();
      if (v->kind == Value::Mark) break;
      items.push_back(v);
    }
    return {items.rbegin(), items.rend()};
  }

  ValuePtr PersistentLoad(const ValuePtr& pid) {
    // ('storage', storage_type, key, location, numel[, view_metadata])
    if (pid->kind != Value::Tuple || pid->items.size() < 5 || pid->items[0]->s != "storage") {
      Fail(path_, "unsupported persistent id");
    }
    auto v = Make(Value::Storage);
    const ValuePtr& type = pid->items[1];
    v->dtype = StorageType(path_, type->s);
    v->s = pid->items[2]->s;
    storages[v->s] = v->dtype;
    return v;
  }

  ValuePtr Reduce(const ValuePtr& fn, const ValuePtr& args) {
    if (fn->kind != Value::Global) return Make(Value::Object);
    const std::string& name = fn->s;
    if (name == "collections.OrderedDict") return Make(Value::Dict);
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      if (args->items.size() < 4 || args->items[0]->kind != Value::Storage) Fail(path_, "malformed tensor record");
      auto v = Make(Value::Tensor);
      v->tensor = std::make_shared<TensorSpec>();
      v->tensor->storageKey = args->items[0]->s;
      v->tensor->dtype = args->items[0]->dtype;
      v->tensor->offset = args->items[1]->i;
      v->tensor->sizes = Ints(path_, args->items[2]);
      v->tensor->strides = Ints(path_, args->items[3]);
      return v;
    }
    if (name == "torch._utils._rebuild_parameter") {
      if (args->items.empty()) Fail(path_, "malformed parameter record");
      return args->items[0];
    }
    return Make(Value::Object);
  }

  std::string path_;
  const char* data_;
  size_t size_;
  size_t pos_ = 0;
  std::vector<ValuePtr> stack_;
  std::map<uint64_t, ValuePtr> memo_;
};

bool IsTensorDict(const ValuePtr& v) {
  if (v->kind != Value::Dict || v->entries.empty()) return false;
  for (auto& e : v->entries) {
    if (e.first->kind != Value::String || e.second->kind != Value::Tensor) return false;
  }
  return true;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FlowError("ERR_WEIGHTS", "cannot open weights file '" + path + "'");
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

StateDict StateDictReader::Read(const std::string& path) {
  const std::string file = ReadFile(path);
  ValuePtr root;
  std::map<std::string, torch::Tensor> storageTensors;
  std::map<std::string, torch::ScalarType> referenced;

  if (file.size() >= 4 && file.compare(0, 2, "PK") == 0) {
    std::istringstream stream(file);
    std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
    try {
      reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(&stream);
    } catch (const c10::Error& e) {
      Fail(path, std::string("not a readable zip archive (") + e.what_without_backtrace() + ")");
    }
    if (reader->hasRecord("constants.pkl")) {
      Fail(path, "this is a TorchScript model, not a state dict: pass it as the model, not as weights");
    }
    if (!reader->hasRecord("data.pkl")) Fail(path, "no data.pkl record (not a torch.save file)");
    at::DataPtr pickle;
    size_t pickleSize = 0;
    std::tie(pickle, pickleSize) = reader->getRecord("data.pkl");
    Unpickler unpickler(path, static_cast<const char*>(pickle.get()), pickleSize);
    root = unpickler.Run();
    referenced = unpickler.storages;
    for (auto& [key, dtype] : referenced) {
      const std::string record = "data/" + key;
      if (!reader->hasRecord(record)) Fail(path, "missing storage record " + record);
      at::DataPtr data;
      size_t bytes = 0;
      std::tie(data, bytes) = reader->getRecord(record);
      const int64_t itemSize = c10::elementSize(dtype);
      auto storage = torch::empty({static_cast<int64_t>(bytes) / itemSize}, torch::TensorOptions().dtype(dtype));
      std::memcpy(storage.data_ptr(), data.get(), bytes);
      storageTensors[key] = storage;
    }
  } else {
    // Legacy format: magic number, protocol version, system info, the object, the storage keys, then for
    // each key its element count (int64) and raw bytes.
    if (file.size() < 2 || static_cast<uint8_t>(file[0]) != 0x80) {
      Fail(path, "not a PyTorch checkpoint (neither a zip archive nor a pickle stream)");
    }
    size_t pos = 0;
    auto next = [&](std::map<std::string, torch::ScalarType>* refs) {
      Unpickler unpickler(path, file.data() + pos, file.size() - pos);
      ValuePtr v = unpickler.Run();
      pos += unpickler.Position();
      if (refs) *refs = unpickler.storages;
      return v;
    };
    // 0x1950a86a20f9469cfc6c, little-endian
    static const std::string kMagic("\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19", 10);
    if (next(nullptr)->s != kMagic) Fail(path, "not a PyTorch checkpoint (bad magic number)");
    next(nullptr);  // protocol version
    next(nullptr);  // system info
    root = next(&referenced);
    ValuePtr keys = next(nullptr);
    for (auto& key : keys->items) {
      auto it = referenced.find(key->s);
      if (it == referenced.end()) Fail(path, "storage " + key->s + " is listed but never used");
      if (file.size() - pos < 8) Fail(path, "unexpected end of data (truncated file?)");
      int64_t count = 0;
      std::memcpy(&count, file.data() + pos, 8);
      pos += 8;
      const int64_t bytes = count * static_cast<int64_t>(c10::elementSize(it->second));
      if (count < 0 || static_cast<uint64_t>(bytes) > file.size() - pos)
        Fail(path, "unexpected end of data (truncated file?)");
      auto storage = torch::empty({count}, torch::TensorOptions().dtype(it->second));
      std::memcpy(storage.data_ptr(), file.data() + pos, bytes);
      pos += bytes;
      storageTensors[key->s] = storage;
    }
  }

  StateDict out;
  ValuePtr dict = root;
  if (!IsTensorDict(dict) && dict->kind == Value::Dict) {
    for (auto& e : root->entries) {
      if (e.first->kind != Value::String) continue;
      if (e.second->kind == Value::Float) out.scalars[e.first->s] = e.second->f;
      if (e.second->kind == Value::Int) out.scalars[e.first->s] = static_cast<double>(e.second->i);
    }
    for (const char* key : {"state_dict", "model", "model_state_dict"}) {
      for (auto& e : root->entries) {
        if (e.first->kind == Value::String && e.first->s == key && IsTensorDict(e.second)) dict = e.second;
      }
      if (dict != root) break;
    }
  }
  if (!IsTensorDict(dict)) Fail(path, "it holds no state dict (a mapping of names to tensors)");

  for (auto& [key, value] : dict->entries) {
    const TensorSpec& spec = *value->tensor;
    auto storage = storageTensors.find(spec.storageKey);
    if (storage == storageTensors.end()) Fail(path, "tensor " + key->s + " refers to a missing storage");
    int64_t extent = spec.offset;
    for (size_t d = 0; d < spec.sizes.size(); ++d) {
      if (spec.sizes[d] == 0) {
        extent = 0;
        break;
      }
      extent += (spec.sizes[d] - 1) * spec.strides[d];
    }
    if (spec.sizes.size() != spec.strides.size() || (extent > 0 && extent >= storage->second.numel())) {
      Fail(path, "tensor " + key->s + " does not fit its storage (truncated file?)");
    }
    out.names.push_back(key->s);
    out.tensors[key->s] = storage->second.as_strided(spec.sizes, spec.strides, spec.offset);
  }
  return out;
}
