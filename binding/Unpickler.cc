#include "Unpickler.h"

#include <algorithm>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace {

constexpr uint64_t kBudgetPerPickleByte = 24;          // objects a pickle may build, per byte of it
constexpr uint64_t kBudgetFloor = uint64_t(32) << 20;  // ... and at least this much
constexpr uint64_t kBudgetCap = uint64_t(512) << 20;   // ... and never more than this
constexpr uint32_t kMaxDepth = 1000;                   // containers inside containers
constexpr size_t kMaxDims = 16;

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

}  // namespace

Unpickler::Unpickler(const std::string& path, const char* data, size_t size, ErrorCode errorCode, const char* what)
    : errorCode_(errorCode),
      what_(what),
      path_(path),
      data_(data),
      size_(size),
      budget_(std::min(kBudgetCap, std::max(kBudgetFloor, kBudgetPerPickleByte * static_cast<uint64_t>(size)))) {}

Ref Unpickler::Run() {
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
        if (At(name).kind != Value::String || At(module).kind != Value::String) Corrupt("STACK_GLOBAL of non-strings");
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

const Value& Unpickler::At(Ref ref) const {
  if (ref == kMark || ref >= values_.size()) Corrupt("a MARK where a value belongs");
  return values_[ref];
}

void Unpickler::Fail(const std::string& why) const {
  throw FlowError(errorCode_, std::string("cannot read ") + what_ + " '" + path_ + "': " + why);
}

void Unpickler::Charge(uint64_t bytes) {
  used_ += bytes;
  if (used_ > budget_) {
    Fail("its pickle builds more objects than a checkpoint of its size can (over " + std::to_string(budget_ >> 20) +
         " MB for " + std::to_string(size_) + " bytes of pickle)");
  }
}

Ref Unpickler::New(Value::Kind kind) {
  Charge(sizeof(Value));
  if (values_.size() >= kMark) Corrupt("too many objects");
  values_.emplace_back();
  values_.back().kind = kind;
  return static_cast<Ref>(values_.size() - 1);
}

void Unpickler::Push(Ref ref) {
  Charge(sizeof(Ref));
  stack_.push_back(ref);
}

Ref Unpickler::Top() const {
  if (stack_.empty()) Corrupt("stack underflow");
  return stack_.back();
}

Ref Unpickler::Pop() {
  const Ref ref = Top();
  stack_.pop_back();
  return ref;
}

std::vector<Ref> Unpickler::PopN(size_t n) {
  if (stack_.size() < n) Corrupt("stack underflow");
  std::vector<Ref> items(stack_.end() - n, stack_.end());
  stack_.resize(stack_.size() - n);
  for (Ref item : items) At(item);
  return items;
}

std::vector<Ref> Unpickler::PopToMark(bool pairs) {
  size_t mark = stack_.size();
  while (mark > 0 && stack_[mark - 1] != kMark) --mark;
  if (mark == 0) Corrupt("no MARK on the stack");
  std::vector<Ref> items(stack_.begin() + mark, stack_.end());
  stack_.resize(mark - 1);
  if (pairs && items.size() % 2) Corrupt("an odd number of dictionary items");
  for (Ref item : items) At(item);
  return items;
}

Ref Unpickler::Expect(Ref ref, Value::Kind kind, const char* op) {
  if (At(ref).kind != kind) Corrupt(std::string(op) + " on the wrong kind of object");
  return ref;
}

Ref Unpickler::Container(Value::Kind kind, const std::vector<Ref>& items) {
  const Ref ref = New(kind);
  Append(ref, items);
  return ref;
}

void Unpickler::Append(Ref container, const std::vector<Ref>& items) {
  Charge(items.size() * sizeof(Ref));
  uint32_t depth = values_[container].depth;
  for (Ref item : items) depth = std::max(depth, At(item).depth + 1);
  if (depth > kMaxDepth) Fail("its pickle nests containers deeper than " + std::to_string(kMaxDepth));
  Value& v = values_[container];
  v.depth = std::max<uint32_t>(depth, 1);
  v.items.insert(v.items.end(), items.begin(), items.end());
}

void Unpickler::PushInt(int64_t i, Value::Kind kind) {
  const Ref ref = New(kind);
  values_[ref].i = i;
  Push(ref);
}

void Unpickler::PushString(std::string s) {
  Charge(s.size());
  const Ref ref = New(Value::String);
  values_[ref].s = std::move(s);
  Push(ref);
}

Ref Unpickler::Global(std::string name) {
  Charge(name.size());
  const Ref ref = New(Value::Global);
  values_[ref].s = std::move(name);
  return ref;
}

void Unpickler::Long(size_t n) {
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

void Unpickler::Float() {
  const std::string bytes = Bytes(8);
  uint64_t raw = 0;
  for (int k = 0; k < 8; ++k) raw = (raw << 8) | static_cast<uint8_t>(bytes[k]);
  const Ref ref = New(Value::Float);
  std::memcpy(&values_[ref].f, &raw, 8);
  Push(ref);
}

void Unpickler::Memoize(uint64_t key) {
  // Picklers number memo entries in order. LibTorch's unpickler reserves twice the key in 16-byte slots, so one
  // LONG_BINPUT of a key in the hundreds of millions took 4.3 GB before it failed; a key past the next is refused.
  if (key > memo_.size()) Corrupt("memo key " + std::to_string(key) + " out of order");
  Charge(64);  // a map node
  memo_[key] = Top();
}

Ref Unpickler::Memo(uint64_t key) const {
  auto it = memo_.find(key);
  if (it == memo_.end()) Corrupt("unknown memo entry");
  return it->second;
}

uint8_t Unpickler::U8() {
  if (pos_ >= size_) Fail("unexpected end of data (truncated file?)");
  return static_cast<uint8_t>(data_[pos_++]);
}

uint64_t Unpickler::LE(int n) {
  uint64_t v = 0;
  for (int k = 0; k < n; ++k) v |= static_cast<uint64_t>(U8()) << (8 * k);
  return v;
}

std::string Unpickler::Bytes(uint64_t n) {
  if (n > size_ - pos_) Fail("unexpected end of data (truncated file?)");
  std::string out(data_ + pos_, n);
  pos_ += n;
  return out;
}

std::string Unpickler::Line() {
  const void* end = std::memchr(data_ + pos_, '\n', size_ - pos_);
  if (end == nullptr) Fail("unexpected end of data (truncated file?)");
  const size_t n = static_cast<const char*>(end) - (data_ + pos_);
  std::string out(data_ + pos_, n);
  pos_ += n + 1;
  return out;
}

Ref Unpickler::PersistentLoad(Ref pid) {
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

std::vector<int64_t> Unpickler::Ints(Ref ref, const std::string& what) {
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

Ref Unpickler::Reduce(Ref fn, Ref argsRef) {
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
      Fail("a tensor with " + std::to_string(spec.sizes.size()) + " sizes but " + std::to_string(spec.strides.size()) +
           " strides");
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
