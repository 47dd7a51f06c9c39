// A bounded interpreter for the pickles torch.save and torch.jit.save write: the subset of the protocol they emit
// (protocol 2, and those of 4 for robustness), building plain values, tensor views and storage references, never
// Python objects.
//
// Everything it reads is untrusted: sizes, counts and offsets are checked before they are used, arithmetic on
// them cannot overflow, the values live in one flat arena (no recursion, so no nesting depth can exhaust the
// stack, neither while reading nor when freeing), and a memory budget that grows with the pickle's size bounds
// what a small file can make it allocate.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include <torch/script.h>

#include "FlowError.h"

// A reference to a value in the arena; kMark is the pickle's MARK, which needs no value.
using Ref = uint32_t;
constexpr Ref kMark = std::numeric_limits<Ref>::max();

// A tensor the pickle rebuilds: a view of one of its storages.
struct TensorSpec {
  Ref storage = 0;
  int64_t offset = 0;
  std::vector<int64_t> sizes;
  std::vector<int64_t> strides;
};

// One value the pickle builds; containers refer to their members by Ref.
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

class Unpickler {
 public:
  // Reads the pickle in data[0, size) of the file at path; errors are FlowError(errorCode) naming "<what> '<path>'".
  Unpickler(const std::string& path, const char* data, size_t size, ErrorCode errorCode = ErrorCode::Weights,
            const char* what = "weights file");

  // Runs the pickle to its STOP and returns the value it built.
  Ref Run();

  const Value& At(Ref ref) const;
  const TensorSpec& Spec(const Value& tensor) const { return tensors_.at(static_cast<size_t>(tensor.i)); }
  const std::vector<TensorSpec>& tensors() const { return tensors_; }
  size_t Position() const { return pos_; }
  // Storages the pickle referred to: record key -> the storage value.
  const std::map<std::string, Ref>& storages() const { return storages_; }

 private:
  [[noreturn]] void Fail(const std::string& why) const;
  [[noreturn]] void Corrupt(const std::string& what) const { Fail("corrupt pickle (" + what + ")"); }

  void Charge(uint64_t bytes);
  Ref New(Value::Kind kind);
  void Push(Ref ref);
  Ref Top() const;
  Ref Pop();
  std::vector<Ref> PopN(size_t n);
  std::vector<Ref> PopToMark(bool pairs = false);
  Ref Expect(Ref ref, Value::Kind kind, const char* op);
  Ref Container(Value::Kind kind, const std::vector<Ref>& items);
  void Append(Ref container, const std::vector<Ref>& items);
  void PushInt(int64_t i, Value::Kind kind = Value::Int);
  void PushString(std::string s);
  Ref Global(std::string name);
  void Long(size_t n);
  // Big-endian IEEE 754.
  void Float();
  void Memoize(uint64_t key);
  Ref Memo(uint64_t key) const;

  uint8_t U8();
  uint64_t LE(int n);
  std::string Bytes(uint64_t n);
  std::string Line();

  Ref PersistentLoad(Ref pid);

  std::vector<int64_t> Ints(Ref ref, const std::string& what);

  Ref Reduce(Ref fn, Ref argsRef);

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

// The last element a tensor view reaches in its storage, plus one; false when that overflows.
bool ViewExtent(const TensorSpec& spec, int64_t* extent);
