#include "ExportFile.h"

#include <fstream>

#include "FlowError.h"
#include "Unpickler.h"
#include "ZipArchive.h"

namespace {

// Checks the export's pickles with the bounded interpreter (data, constants and the code's debug_pkl), that each
// tensor record holds exactly the bytes its storage declares, and that each tensor lies inside its storage: LibTorch
// 1.13 loads either fault without complaint and computes with what lies past the data.
void CheckStorages(ZipArchive& zip, const std::string& path) {
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

}  // namespace

void CheckExportFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FlowError(ErrorCode::ModelLoad, "cannot open model file '" + path + "'");
  char head[2] = {0, 0};
  in.read(head, 2);
  if (in.gcount() == 2 && static_cast<uint8_t>(head[0]) == 0x80) {
    throw FlowError(ErrorCode::ModelLoad,
                    "model file '" + path +
                        "' is a PyTorch checkpoint in the legacy format, not a "
                        "TorchScript export: pass it as `weights` next to an export of its architecture");
  }
  if (in.gcount() != 2 || head[0] != 'P' || head[1] != 'K') {
    throw FlowError(ErrorCode::ModelLoad, "model file '" + path + "' is not a TorchScript export (not a zip archive)");
  }
  ZipArchive zip(path, ErrorCode::ModelLoad, "model file");
  if (!zip.Has("constants.pkl") && zip.Has("data.pkl")) {
    throw FlowError(ErrorCode::ModelLoad, "model file '" + path +
                                              "' is a PyTorch checkpoint (state dict), not a "
                                              "TorchScript export: pass it as `weights` next to an export of its "
                                              "architecture, or convert it with scripts/export --weights");
  }
  zip.VerifyAll();
  CheckStorages(zip, path);
}
