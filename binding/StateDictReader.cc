#include "StateDictReader.h"

#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <new>
#include <sstream>
#include <unordered_map>

#include "FlowError.h"
#include "ZipArchive.h"

// Everything read from the file is untrusted: sizes, counts, offsets and strides are checked before they are
// used, arithmetic on them cannot overflow, the pickle's objects live in one flat arena (no recursion, so no
// nesting depth can exhaust the stack, neither while reading nor when freeing), and a memory budget that grows
// with the file bounds what a small file can make the reader allocate.

namespace {

constexpr uint64_t kMaxFileBytes = uint64_t(8) << 30;  // the largest published weights are about 160 MB
constexpr uint64_t kBudgetPerPickleByte = 24;          // objects a pickle may build, per byte of it
constexpr uint64_t kBudgetFloor = uint64_t(32) << 20;  // ... and at least this much
constexpr uint64_t kBudgetCap = uint64_t(512) << 20;   // ... and never more than this
constexpr uint32_t kMaxDepth = 1000;                   // containers inside containers
constexpr size_t kMaxDims = 16;

[[noreturn]] void Fail(const std::string& path, const std::string& why) {
  throw FlowError(ErrorCode::Weights, "cannot read weights file '" + path + "': " + why);
}

// A reference to a value in the arena; kMark is the pickle's MARK, which needs no value.
using Ref = uint32_t;
constexpr Ref kMark = std::numeric_limits<Ref>::max();

struct TensorSpec {
  Ref storage = 0;
  int64_t offset = 0;
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;
};

struct Value {
  enum Kind : uint8_t {
    None,
    Bool,
    Int,
    Float,
    String,
    Tuple,
    List,
    Dict,
    Global,
    Storage,
    Tensor,
    Object
  } kind = None;
  uint32_t depth = 0;  // 0 for scalars; 1 + the deepest member for containers
  int64_t i = 0;       // Int, Bool; Storage: element count the pickle declares; Tensor: index of its TensorSpec
  double f = 0;
  std::string s;                            // String; Global: "module.name"; Storage: record key
  std::vector<Ref> items;                   // Tuple, List; Dict: key, value, key, value, ...
  torch::ScalarType dtype = torch::kFloat;  // Storage
};

torch::ScalarType StorageType(const std::string& global) {
  static const std::map<std::string, torch::ScalarType> types = {
      {"torch.FloatStorage", torch::kFloat}, {"torch.DoubleStorage", torch::kDouble},
      {"torch.HalfStorage", torch::kHalf},   {"torch.BFloat16Storage", torch::kBFloat16},
      {"torch.LongStorage", torch::kLong},   {"torch.IntStorage", torch::kInt},
      {"torch.ShortStorage", torch::kShort}, {"torch.CharStorage", torch::kChar},
      {"torch.ByteStorage", torch::kByte},   {"torch.BoolStorage", torch::kBool},
  };
  auto it = types.find(global);
  if (it == types.end()) throw std::invalid_argument("unsupported storage type " + global);
  return it->second;
}

// A pickle virtual machine for the opcodes torch.save produces (protocol 2, and those of 4 for robustness).
class Unpickler {
 public:
  Unpickler(const std::string& path, const char* data, size_t size, ErrorCode errorCode = ErrorCode::Weights,
            const char* what = "weights file")
      : errorCode_(errorCode),
        what_(what),
        path_(path),
        data_(data),
        size_(size),
        budget_(std::min(kBudgetCap, std::max(kBudgetFloor, kBudgetPerPickleByte * static_cast<uint64_t>(size)))) {}

  Ref Run() {
    while (true) {
      const uint8_t op = U8();
      switch (op) {
        case 0x80: U8(); break;      // PROTO
        case 0x95: Bytes(8); break;  // FRAME
        case '(': Push(kMark); break;
        case '.': return Pop();  // STOP
        case 'N': Push(New(Value::None)); break;
        case 0x88:
        case 0x89: PushInt(op == 0x88, Value::Bool); break;
        case 'J': PushInt(static_cast<int32_t>(LE(4))); break;  // BININT
        case 'K': PushInt(U8()); break;                         // BININT1
        case 'M': PushInt(static_cast<int64_t>(LE(2))); break;  // BININT2
        case 0x8a: Long(U8()); break;                           // LONG1
        case 'G': Float(); break;                               // BINFLOAT
        case 'X':
        case 'T':
        case 'B': PushString(Bytes(LE(4))); break;
        case 0x8c:
        case 'U':
        case 'C': PushString(Bytes(U8())); break;
        case ')': Push(New(Value::Tuple)); break;
        case ']': Push(New(Value::List)); break;
        case '}': Push(New(Value::Dict)); break;
        case 0x8f: Push(New(Value::Object)); break;  // EMPTY_SET
        case 't': Push(Container(Value::Tuple, PopToMark())); break;
        case 'l': Push(Container(Value::List, PopToMark())); break;
        case 'd': Push(Container(Value::Dict, PopToMark(true))); break;
        case 0x85:
        case 0x86:
        case 0x87: Push(Container(Value::Tuple, PopN(op - 0x84))); break;  // TUPLE1..3
        case 0x91:
          PopToMark();
          Push(New(Value::Object));
          break;  // FROZENSET
        case 0x90:
          PopToMark();
          Top();
          break;                                  // ADDITEMS
        case 'q': Memoize(U8()); break;           // BINPUT
        case 'r': Memoize(LE(4)); break;          // LONG_BINPUT
        case 0x94: Memoize(memo_.size()); break;  // MEMOIZE
        case 'h': Push(Memo(U8())); break;        // BINGET
        case 'j': Push(Memo(LE(4))); break;       // LONG_BINGET
        case 'c': {                               // GLOBAL
          const std::string module = Line();
          Push(Global(module + "." + Line()));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          const Ref name = Pop(), module = Pop();
          if (At(name).kind != Value::String || At(module).kind != Value::String)
            Corrupt("STACK_GLOBAL of non-strings");
          Push(Global(At(module).s + "." + At(name).s));
          break;
        }
        case 'a': {
          const Ref item = Pop();
          Append(Expect(Top(), Value::List, "APPEND"), {item});
          break;
        }
        case 'e': {
          auto items = PopToMark();
          Append(Expect(Top(), Value::List, "APPENDS"), items);
          break;
        }
        case 's': {
          const Ref value = Pop(), key = Pop();
          Append(Expect(Top(), Value::Dict, "SETITEM"), {key, value});
          break;
        }
        case 'u': {
          auto items = PopToMark(true);
          Append(Expect(Top(), Value::Dict, "SETITEMS"), items);
          break;
        }
        case 'R': {
          const Ref args = Pop(), fn = Pop();
          Push(Reduce(fn, args));
          break;
        }
        case 0x81:
          Pop();
          Pop();
          Push(New(Value::Object));
          break;  // NEWOBJ
        case 'b':
          Pop();
          Top();
          break;                                       // BUILD: object state, e.g. a state dict's _metadata
        case 'Q': Push(PersistentLoad(Pop())); break;  // BINPERSID
        default: {
          std::ostringstream msg;
          msg << "unsupported pickle opcode 0x" << std::hex << int(op) << " at byte " << std::dec << pos_ - 1;
          Fail(msg.str());
        }
      }
    }
  }

  const Value& At(Ref ref) const {
    if (ref == kMark || ref >= values_.size()) Corrupt("a MARK where a value belongs");
    return values_[ref];
  }
  const TensorSpec& Spec(const Value& tensor) const { return tensors_.at(static_cast<size_t>(tensor.i)); }
  const std::vector<TensorSpec>& tensors() const { return tensors_; }
  size_t Position() const { return pos_; }
  // Storages the pickle referred to: record key -> the storage value.
  const std::map<std::string, Ref>& storages() const { return storages_; }

 private:
  [[noreturn]] void Fail(const std::string& why) const {
    throw FlowError(errorCode_, std::string("cannot read ") + what_ + " '" + path_ + "': " + why);
  }
  [[noreturn]] void Corrupt(const std::string& what) const { Fail("corrupt pickle (" + what + ")"); }

  void Charge(uint64_t bytes) {
    used_ += bytes;
    if (used_ > budget_) {
      Fail("its pickle builds more objects than a checkpoint of its size can (over " + std::to_string(budget_ >> 20) +
           " MB for " + std::to_string(size_) + " bytes of pickle)");
    }
  }
  Ref New(Value::Kind kind) {
    Charge(sizeof(Value));
    if (values_.size() >= kMark) Corrupt("too many objects");
    values_.emplace_back();
    values_.back().kind = kind;
    return static_cast<Ref>(values_.size() - 1);
  }
  void Push(Ref ref) {
    Charge(sizeof(Ref));
    stack_.push_back(ref);
  }
  Ref Top() const {
    if (stack_.empty()) Corrupt("stack underflow");
    return stack_.back();
  }
  Ref Pop() {
    const Ref ref = Top();
    stack_.pop_back();
    return ref;
  }
  std::vector<Ref> PopN(size_t n) {
    if (stack_.size() < n) Corrupt("stack underflow");
    std::vector<Ref> items(stack_.end() - n, stack_.end());
    stack_.resize(stack_.size() - n);
    for (Ref item : items) At(item);
    return items;
  }
  std::vector<Ref> PopToMark(bool pairs = false) {
    size_t mark = stack_.size();
    while (mark > 0 && stack_[mark - 1] != kMark) --mark;
    if (mark == 0) Corrupt("no MARK on the stack");
    std::vector<Ref> items(stack_.begin() + mark, stack_.end());
    stack_.resize(mark - 1);
    if (pairs && items.size() % 2) Corrupt("an odd number of dictionary items");
    for (Ref item : items) At(item);
    return items;
  }
  Ref Expect(Ref ref, Value::Kind kind, const char* op) {
    if (At(ref).kind != kind) Corrupt(std::string(op) + " on the wrong kind of object");
    return ref;
  }
  Ref Container(Value::Kind kind, const std::vector<Ref>& items) {
    const Ref ref = New(kind);
    Append(ref, items);
    return ref;
  }
  void Append(Ref container, const std::vector<Ref>& items) {
    Charge(items.size() * sizeof(Ref));
    uint32_t depth = values_[container].depth;
    for (Ref item : items) depth = std::max(depth, At(item).depth + 1);
    if (depth > kMaxDepth) Fail("its pickle nests containers deeper than " + std::to_string(kMaxDepth));
    Value& v = values_[container];
    v.depth = std::max<uint32_t>(depth, 1);
    v.items.insert(v.items.end(), items.begin(), items.end());
  }
  void PushInt(int64_t i, Value::Kind kind = Value::Int) {
    const Ref ref = New(kind);
    values_[ref].i = i;
    Push(ref);
  }
  void PushString(std::string s) {
    Charge(s.size());
    const Ref ref = New(Value::String);
    values_[ref].s = std::move(s);
    Push(ref);
  }
  Ref Global(std::string name) {
    Charge(name.size());
    const Ref ref = New(Value::Global);
    values_[ref].s = std::move(name);
    return ref;
  }
  void Long(size_t n) {
    const std::string bytes = Bytes(n);
    if (n > 8) {  // only the legacy format's magic number is this large; keep its bytes
      PushString(bytes);
      values_[stack_.back()].kind = Value::Object;
      return;
    }
    uint64_t raw = 0;
    for (size_t k = 0; k < n; ++k) raw |= static_cast<uint64_t>(static_cast<uint8_t>(bytes[k])) << (8 * k);
    if (n > 0 && n < 8 && (bytes[n - 1] & 0x80)) raw |= ~uint64_t(0) << (8 * n);
    PushInt(static_cast<int64_t>(raw));
  }
  void Float() {  // big-endian IEEE 754
    const std::string bytes = Bytes(8);
    uint64_t raw = 0;
    for (int k = 0; k < 8; ++k) raw = (raw << 8) | static_cast<uint8_t>(bytes[k]);
    const Ref ref = New(Value::Float);
    std::memcpy(&values_[ref].f, &raw, 8);
    Push(ref);
  }
  void Memoize(uint64_t key) {
    // Picklers number memo entries in order. LibTorch's unpickler reserves twice the key in 16-byte slots, so one
    // LONG_BINPUT of a key in the hundreds of millions took 4.3 GB before it failed; a key past the next is refused.
    if (key > memo_.size()) Corrupt("memo key " + std::to_string(key) + " out of order");
    Charge(64);  // a map node
    memo_[key] = Top();
  }
  Ref Memo(uint64_t key) const {
    auto it = memo_.find(key);
    if (it == memo_.end()) Corrupt("unknown memo entry");
    return it->second;
  }

  uint8_t U8() {
    if (pos_ >= size_) Fail("unexpected end of data (truncated file?)");
    return static_cast<uint8_t>(data_[pos_++]);
  }
  uint64_t LE(int n) {
    uint64_t v = 0;
    for (int k = 0; k < n; ++k) v |= static_cast<uint64_t>(U8()) << (8 * k);
    return v;
  }
  std::string Bytes(uint64_t n) {
    if (n > size_ - pos_) Fail("unexpected end of data (truncated file?)");
    std::string out(data_ + pos_, n);
    pos_ += n;
    return out;
  }
  std::string Line() {
    const void* end = std::memchr(data_ + pos_, '\n', size_ - pos_);
    if (end == nullptr) Fail("unexpected end of data (truncated file?)");
    const size_t n = static_cast<const char*>(end) - (data_ + pos_);
    std::string out(data_ + pos_, n);
    pos_ += n + 1;
    return out;
  }

  Ref PersistentLoad(Ref pid) {
    // ('storage', storage type, key, location, element count[, view metadata])
    const Value& id = At(pid);
    if (id.kind != Value::Tuple || id.items.size() < 5 || At(id.items[0]).s != "storage" ||
        At(id.items[1]).kind != Value::Global || At(id.items[2]).kind != Value::String ||
        At(id.items[4]).kind != Value::Int) {
      Fail("unsupported persistent id (not a tensor storage)");
    }
    torch::ScalarType dtype;
    try {
      dtype = StorageType(At(id.items[1]).s);
    } catch (const std::invalid_argument& e) { Fail(e.what()); }
    const std::string key = At(id.items[2]).s;
    const int64_t count = At(id.items[4]).i;
    if (count < 0) Fail("storage " + key + " declares " + std::to_string(count) + " elements");
    auto known = storages_.find(key);
    if (known != storages_.end()) {
      const Value& before = values_[known->second];
      if (before.dtype != dtype || before.i != count) Fail("storage " + key + " is declared twice, differently");
      return known->second;
    }
    const Ref ref = New(Value::Storage);
    values_[ref].dtype = dtype;
    values_[ref].s = key;
    values_[ref].i = count;
    storages_[key] = ref;
    return ref;
  }

  std::vector<int64_t> Ints(Ref ref, const std::string& what) {
    const Value& v = At(ref);
    if (v.kind != Value::Tuple && v.kind != Value::List) Fail("malformed tensor record (" + what + ")");
    if (v.items.size() > kMaxDims) Fail("a tensor with more than " + std::to_string(kMaxDims) + " dimensions");
    std::vector<int64_t> out;
    for (Ref item : v.items) {
      if (At(item).kind != Value::Int || At(item).i < 0) Fail("malformed tensor record (" + what + ")");
      out.push_back(At(item).i);
    }
    return out;
  }

  Ref Reduce(Ref fn, Ref argsRef) {
    const Value& args = At(argsRef);
    if (At(fn).kind != Value::Global || args.kind != Value::Tuple) return New(Value::Object);
    const std::string name = At(fn).s;
    if (name == "collections.OrderedDict") return New(Value::Dict);
    if (name == "torch._utils._rebuild_tensor_v2" || name == "torch._utils._rebuild_tensor") {
      if (args.items.size() < 4 || At(args.items[0]).kind != Value::Storage || At(args.items[1]).kind != Value::Int) {
        Fail("malformed tensor record");
      }
      TensorSpec spec;
      spec.storage = args.items[0];
      spec.offset = At(args.items[1]).i;
      spec.sizes = Ints(args.items[2], "sizes");
      spec.strides = Ints(args.items[3], "strides");
      if (spec.offset < 0) Fail("a tensor with a negative storage offset");
      if (spec.sizes.size() != spec.strides.size()) {
        Fail("a tensor with " + std::to_string(spec.sizes.size()) + " sizes but " +
             std::to_string(spec.strides.size()) + " strides");
      }
      Charge(sizeof(TensorSpec) + 16 * spec.sizes.size());
      const Ref ref = New(Value::Tensor);
      values_[ref].i = static_cast<int64_t>(tensors_.size());
      tensors_.push_back(std::move(spec));
      return ref;
    }
    if (name == "torch._utils._rebuild_parameter") {
      if (args.items.empty()) Fail("malformed parameter record");
      return args.items[0];
    }
    return New(Value::Object);
  }

  ErrorCode errorCode_;
  const char* what_;
  std::string path_;
  const char* data_;
  size_t size_;
  size_t pos_ = 0;
  uint64_t budget_;
  uint64_t used_ = 0;
  std::vector<Value> values_;
  std::vector<TensorSpec> tensors_;
  std::vector<Ref> stack_;
  std::unordered_map<uint64_t, Ref> memo_;
  std::map<std::string, Ref> storages_;
};

bool IsTensorDict(const Unpickler& pickle, const Value& v) {
  if (v.kind != Value::Dict || v.items.empty()) return false;
  for (size_t k = 0; k < v.items.size(); k += 2) {
    if (pickle.At(v.items[k]).kind != Value::String || pickle.At(v.items[k + 1]).kind != Value::Tensor) return false;
  }
  return true;
}

// The last element a tensor view reaches in its storage, plus one; false when that overflows.
bool ViewExtent(const TensorSpec& spec, int64_t* extent) {
  int64_t last = spec.offset;
  for (size_t d = 0; d < spec.sizes.size(); ++d) {
    if (spec.sizes[d] == 0) {
      *extent = 0;
      return true;
    }
    int64_t step = 0;
    if (__builtin_mul_overflow(spec.sizes[d] - 1, spec.strides[d], &step) ||
        __builtin_add_overflow(last, step, &last)) {
      return false;
    }
  }
  return !__builtin_add_overflow(last, int64_t(1), extent);
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

void StateDictReader::CheckExportStorages(ZipArchive& zip, const std::string& path) {
  auto fail = [&](const std::string& why) {
    throw FlowError(ErrorCode::ModelLoad, "cannot read model file '" + path + "': " + why);
  };
  // The source ranges beside the code (code/**.debug_pkl) are pickles LibTorch also reads: the same bounded pass.
  for (const auto& [name, record] : zip.records()) {
    if (name.size() < 10 || name.compare(name.size() - 10, 10, ".debug_pkl") != 0) continue;
    std::string bytes(record.size, '\0');
    zip.Read(name, bytes.data());
    try {
      Unpickler(path, bytes.data(), bytes.size(), ErrorCode::ModelLoad, "model file").Run();
    } catch (const FlowError& e) { throw FlowError(ErrorCode::ModelLoad, std::string(e.what()) + " in " + name); }
  }
  for (const std::string archive : {"data", "constants"}) {
    if (!zip.Has(archive + ".pkl")) continue;
    std::string bytes(zip.Get(archive + ".pkl").size, '\0');
    zip.Read(archive + ".pkl", bytes.data());
    Unpickler pickle(path, bytes.data(), bytes.size(), ErrorCode::ModelLoad, "model file");
    pickle.At(pickle.Run());
    for (const auto& [key, ref] : pickle.storages()) {
      const std::string record = archive + "/" + key;
      if (!zip.Has(record)) fail("tensor record " + record + " is missing");
      const Value& storage = pickle.At(ref);
      uint64_t expected = 0;
      if (__builtin_mul_overflow(static_cast<uint64_t>(storage.i), c10::elementSize(storage.dtype), &expected) ||
          zip.Get(record).size != expected) {
        fail("tensor record " + record + " holds " + std::to_string(zip.Get(record).size) +
             " bytes, its storage declares " + std::to_string(expected));
      }
    }
    // Each tensor's view must lie inside its storage: LibTorch would read past it without a word.
    for (const TensorSpec& spec : pickle.tensors()) {
      const Value& storage = pickle.At(spec.storage);
      int64_t extent = 0;
      if (!ViewExtent(spec, &extent) || extent > storage.i) {
        fail("a tensor in " + archive + ".pkl reaches past its storage " + archive + "/" + storage.s + " (" +
             std::to_string(storage.i) + " elements)");
      }
    }
  }
}

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
