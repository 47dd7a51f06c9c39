// The zip container of torch.save files and TorchScript exports, read without trusting it: every offset and size
// is checked against the file before use, and every record read is checked against its CRC-32. Records are stored
// (torch.save) or deflated (TorchScript's code records); a deflated record may not inflate past its declared size.
//
// LibTorch's own reader (caffe2::serialize::PyTorchStreamReader) builds miniz without CRC checks, so flipped bytes
// in tensor data load silently, and a shifted local header makes it read a record from the wrong place.
#pragma once

#include <cstdint>
#include <fstream>
#include <map>
#include <string>

#include "FlowError.h"

class ZipArchive {
 public:
  struct Record {
    uint64_t size = 0;            // uncompressed bytes
    uint64_t compressedSize = 0;  // bytes in the file
    bool deflated = false;
    uint32_t crc = 0;         // CRC-32 from the central directory
    uint64_t dataOffset = 0;  // where its bytes start, past the local header
  };

  // Reads the central directory; `what` names the file in errors ("weights file", "model file").
  // Throws FlowError(errorCode) when the file is not a well-formed zip of stored or deflated records.
  ZipArchive(const std::string& path, ErrorCode errorCode, std::string what);

  // Records by name without the archive's top folder ("data.pkl", "data/0", ...).
  const std::map<std::string, Record>& records() const { return records_; }
  bool Has(const std::string& name) const { return records_.count(name) > 0; }
  const Record& Get(const std::string& name) const;

  // Copies a record into `destination` (record.size bytes) and checks its CRC-32.
  void Read(const std::string& name, void* destination);
  // Checks the CRC-32 of every record, reading the file in pieces.
  void VerifyAll();

  uint64_t fileSize() const { return fileSize_; }

 private:
  [[noreturn]] void Fail(const std::string& why) const;
  void ReadAt(uint64_t offset, void* destination, uint64_t size);
  // The record's uncompressed bytes, in pieces, to `sink`; checks the size and the CRC-32.
  template <typename Sink>
  void Stream(const std::string& name, const Record& record, Sink sink);

  std::string path_;
  ErrorCode errorCode_;
  std::string what_;
  std::ifstream file_;
  uint64_t fileSize_ = 0;
  std::map<std::string, Record> records_;
};
