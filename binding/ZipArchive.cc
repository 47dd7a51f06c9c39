#include "ZipArchive.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "FlowError.h"

namespace {

constexpr uint32_t kEndOfDirectory = 0x06054b50;
constexpr uint32_t kZip64Locator = 0x07064b50;
constexpr uint32_t kZip64EndOfDirectory = 0x06064b50;
constexpr uint32_t kDirectoryEntry = 0x02014b50;
constexpr uint32_t kLocalHeader = 0x04034b50;
constexpr size_t kEndOfDirectorySize = 22;
constexpr size_t kDirectoryEntrySize = 46;
constexpr size_t kLocalHeaderSize = 30;
constexpr uint64_t kMaxRecords = 1 << 20;  // a state dict has hundreds; a TorchScript export a few thousand

uint64_t LittleEndian(const uint8_t* p, int bytes) {
  uint64_t v = 0;
  for (int k = bytes - 1; k >= 0; --k) v = (v << 8) | p[k];
  return v;
}

}  // namespace

ZipArchive::ZipArchive(const std::string& path, ErrorCode errorCode, std::string what)
    : path_(path), errorCode_(errorCode), what_(std::move(what)) {
  file_.open(path, std::ios::binary);
  if (!file_) throw FlowError(errorCode_, "cannot open " + what_ + " '" + path + "'");
  file_.seekg(0, std::ios::end);
  const std::streamoff end = file_.tellg();
  if (end < 0) Fail("its size cannot be read");
  fileSize_ = static_cast<uint64_t>(end);
  if (fileSize_ < kEndOfDirectorySize) Fail("too short to be a zip archive (" + std::to_string(fileSize_) + " bytes)");

  // The end-of-directory record is the last 22 bytes, unless a comment (up to 65535 bytes) follows it.
  const uint64_t tail = std::min<uint64_t>(fileSize_, kEndOfDirectorySize + 0xffff);
  std::vector<uint8_t> buffer(tail);
  ReadAt(fileSize_ - tail, buffer.data(), tail);
  int64_t found = -1;
  for (int64_t at = static_cast<int64_t>(tail - kEndOfDirectorySize); at >= 0; --at) {
    if (LittleEndian(&buffer[at], 4) == kEndOfDirectory &&
        at + kEndOfDirectorySize + LittleEndian(&buffer[at + 20], 2) == tail) {
      found = at;
      break;
    }
  }
  if (found < 0) Fail("no zip end-of-directory record (truncated file?)");
  const uint64_t endAt = fileSize_ - tail + static_cast<uint64_t>(found);
  uint64_t entries = LittleEndian(&buffer[found + 10], 2);
  uint64_t directorySize = LittleEndian(&buffer[found + 12], 4);
  uint64_t directoryOffset = LittleEndian(&buffer[found + 16], 4);

  // torch.save always writes the zip64 records; their values take precedence.
  if (endAt >= 20) {
    uint8_t locator[20];
    ReadAt(endAt - 20, locator, 20);
    if (LittleEndian(locator, 4) == kZip64Locator) {
      const uint64_t zip64At = LittleEndian(locator + 8, 8);
      if (zip64At > endAt - 20 || endAt - 20 - zip64At < 56) Fail("corrupt zip64 locator");
      uint8_t record[56];
      ReadAt(zip64At, record, 56);
      if (LittleEndian(record, 4) != kZip64EndOfDirectory) Fail("corrupt zip64 end-of-directory record");
      entries = LittleEndian(record + 32, 8);
      directorySize = LittleEndian(record + 40, 8);
      directoryOffset = LittleEndian(record + 48, 8);
    }
  }
  if (directoryOffset > fileSize_ || directorySize > fileSize_ - directoryOffset) {
    Fail("its central directory lies outside the file (truncated file?)");
  }
  if (entries > kMaxRecords || entries > directorySize / kDirectoryEntrySize) {
    Fail("its central directory declares " + std::to_string(entries) + " records, more than it can hold");
  }

  std::vector<uint8_t> directory(directorySize);
  ReadAt(directoryOffset, directory.data(), directorySize);
  std::string prefix;
  uint64_t at = 0;
  for (uint64_t n = 0; n < entries; ++n) {
    if (directorySize - at < kDirectoryEntrySize || LittleEndian(&directory[at], 4) != kDirectoryEntry) {
      Fail("corrupt central directory entry " + std::to_string(n));
    }
    const uint8_t* e = &directory[at];
    const uint64_t flags = LittleEndian(e + 8, 2), method = LittleEndian(e + 10, 2);
    const uint32_t crc = static_cast<uint32_t>(LittleEndian(e + 16, 4));
    uint64_t compressed = LittleEndian(e + 20, 4), size = LittleEndian(e + 24, 4);
    const uint64_t nameLength = LittleEndian(e + 28, 2), extraLength = LittleEndian(e + 30, 2);
    const uint64_t commentLength = LittleEndian(e + 32, 2);
    uint64_t localOffset = LittleEndian(e + 42, 4);
    if (directorySize - at - kDirectoryEntrySize < nameLength + extraLength + commentLength) {
      Fail("corrupt central directory entry " + std::to_string(n));
    }
    std::string name(reinterpret_cast<const char*>(e + kDirectoryEntrySize), nameLength);
    // A zip64 extra field holds, in this order, whichever of the three values did not fit in 32 bits.
    const uint8_t* extra = e + kDirectoryEntrySize + nameLength;
    for (uint64_t x = 0; x + 4 <= extraLength;) {
      const uint64_t id = LittleEndian(extra + x, 2), length = LittleEndian(extra + x + 2, 2);
      if (x + 4 + length > extraLength) Fail("corrupt extra field in record '" + name + "'");
      if (id == 0x0001) {
        uint64_t y = x + 4;
        for (uint64_t* value : {&size, &compressed, &localOffset}) {
          if (*value != 0xffffffffu) continue;
          if (y + 8 > x + 4 + length) Fail("corrupt zip64 field in record '" + name + "'");
          *value = LittleEndian(extra + y, 8);
          y += 8;
        }
      }
      x += 4 + length;
    }
    at += kDirectoryEntrySize + nameLength + extraLength + commentLength;

    if (flags & 1) Fail("record '" + name + "' is encrypted");
    if ((method != 0 && method != 8) || (method == 0 && compressed != size)) {
      Fail("record '" + name + "' uses compression method " + std::to_string(method) + " or inconsistent sizes");
    }
    const size_t slash = name.find('/');
    if (slash == std::string::npos || slash == 0) Fail("record '" + name + "' is not inside the archive's folder");
    if (n == 0) prefix = name.substr(0, slash + 1);
    if (name.compare(0, prefix.size(), prefix) != 0) Fail("records lie in more than one top folder");

    // The local header must name the same record; the data follows it and precedes the central directory.
    if (localOffset > directoryOffset || directoryOffset - localOffset < kLocalHeaderSize) {
      Fail("record '" + name + "' starts outside the file");
    }
    uint8_t local[kLocalHeaderSize];
    ReadAt(localOffset, local, kLocalHeaderSize);
    const uint64_t localName = LittleEndian(local + 26, 2), localExtra = LittleEndian(local + 28, 2);
    if (LittleEndian(local, 4) != kLocalHeader || localName != nameLength) {
      Fail("the local header of record '" + name + "' is corrupt");
    }
    const uint64_t dataOffset = localOffset + kLocalHeaderSize + localName + localExtra;
    if (dataOffset > directoryOffset || compressed > directoryOffset - dataOffset) {
      Fail("record '" + name + "' (" + std::to_string(compressed) + " bytes) runs past the end of the data");
    }
    std::string storedName(localName, '\0');
    ReadAt(localOffset + kLocalHeaderSize, storedName.data(), localName);
    if (storedName != name) Fail("the local header of record '" + name + "' names '" + storedName + "'");

    Record record;
    record.size = size;
    record.compressedSize = compressed;
    record.deflated = method == 8;
    record.crc = crc;
    record.dataOffset = dataOffset;
    if (!records_.emplace(name.substr(prefix.size()), record).second) Fail("record '" + name + "' appears twice");
  }
}

const ZipArchive::Record& ZipArchive::Get(const std::string& name) const {
  auto it = records_.find(name);
  if (it == records_.end()) Fail("it has no record '" + name + "'");
  return it->second;
}

template <typename Sink>
void ZipArchive::Stream(const std::string& name, const Record& record, Sink sink) {
  constexpr uint64_t kChunk = 1 << 20;
  std::vector<uint8_t> input(std::min<uint64_t>(kChunk, std::max<uint64_t>(record.compressedSize, 1)));
  uLong crc = crc32_z(0, nullptr, 0);
  uint64_t produced = 0;
  auto take = [&](const uint8_t* bytes, uint64_t n) {
    if (n > record.size - produced)
      Fail("record '" + name + "' holds more than its declared " + std::to_string(record.size) + " bytes");
    sink(bytes, produced, n);
    crc = crc32_z(crc, bytes, static_cast<z_size_t>(n));
    produced += n;
  };
  if (!record.deflated) {
    for (uint64_t done = 0; done < record.size;) {
      const uint64_t n = std::min<uint64_t>(input.size(), record.size - done);
      ReadAt(record.dataOffset + done, input.data(), n);
      take(input.data(), n);
      done += n;
    }
  } else {
    z_stream z{};
    if (inflateInit2(&z, -MAX_WBITS) != Z_OK) Fail("zlib could not start");
    std::unique_ptr<z_stream, int (*)(z_streamp)> guard(&z, inflateEnd);
    std::vector<uint8_t> output(kChunk);
    int status = Z_OK;
    for (uint64_t read = 0; status != Z_STREAM_END;) {
      if (z.avail_in == 0) {
        if (read == record.compressedSize) Fail("record '" + name + "' ends before its compressed data does");
        const uint64_t n = std::min<uint64_t>(input.size(), record.compressedSize - read);
        ReadAt(record.dataOffset + read, input.data(), n);
        read += n;
        z.next_in = input.data();
        z.avail_in = static_cast<uInt>(n);
      }
      z.next_out = output.data();
      z.avail_out = static_cast<uInt>(output.size());
      status = inflate(&z, Z_NO_FLUSH);
      if (status != Z_OK && status != Z_STREAM_END) Fail("record '" + name + "' has corrupt compressed data");
      take(output.data(), output.size() - z.avail_out);
    }
  }
  if (produced != record.size) {
    Fail("record '" + name + "' holds " + std::to_string(produced) + " bytes, not the declared " +
         std::to_string(record.size));
  }
  if (static_cast<uint32_t>(crc) != record.crc) Fail("record '" + name + "' is corrupt (its CRC-32 does not match)");
}

void ZipArchive::Read(const std::string& name, void* destination) {
  uint8_t* out = static_cast<uint8_t*>(destination);
  Stream(name, Get(name), [out](const uint8_t* bytes, uint64_t at, uint64_t n) { std::memcpy(out + at, bytes, n); });
}

void ZipArchive::VerifyAll() {
  for (const auto& [name, record] : records_) Stream(name, record, [](const uint8_t*, uint64_t, uint64_t) {});
}

void ZipArchive::Fail(const std::string& why) const {
  throw FlowError(errorCode_, "cannot read " + what_ + " '" + path_ + "': " + why);
}

void ZipArchive::ReadAt(uint64_t offset, void* destination, uint64_t size) {
  if (offset > fileSize_ || size > fileSize_ - offset) Fail("unexpected end of data (truncated file?)");
  if (size == 0) return;
  file_.clear();
  file_.seekg(static_cast<std::streamoff>(offset));
  file_.read(static_cast<char*>(destination), static_cast<std::streamsize>(size));
  if (static_cast<uint64_t>(file_.gcount()) != size) Fail("unexpected end of data (truncated file?)");
}
