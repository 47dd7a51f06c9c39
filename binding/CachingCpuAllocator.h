// LibTorch's CPU allocator for this process, keeping freed large blocks for the next tensor of the same size class.
// glibc serves large blocks with mmap and returns them with munmap on every free, so each tensor of a RAFT iteration
// starts on fresh pages whose first touch faults: on a virtual machine that doubled the time of a 1024x440 pair
// and made 1080p ten times slower. Shapes repeat from iteration to iteration and frame to frame, so most requests
// find a block. A request that finds none first frees cached blocks beyond a slack, so resident memory stays within
// that slack of what tensors actually hold; the blocks freed are the ones released longest ago (those of a frame size
// no longer served), not the largest, which are the all-pairs volume the next request of the current size needs. The
// cache is emptied when no model has had work for a while.
#pragma once

#include <c10/core/Allocator.h>
#include <torch/version.h>

#include <cstddef>
#include <deque>
#include <list>
#include <map>
#include <mutex>
#include <unordered_map>
#include <vector>

class CachingCpuAllocator final : public c10::Allocator {
 public:
  // Makes it LibTorch's CPU allocator, once per process, unless OPTICAL_FLOW_ALLOCATOR=system.
  static void Install();
  // The installed allocator, or null.
  static CachingCpuAllocator* Installed();

  // LibTorch 2.3 made allocate() non-const and added copy_data(); earlier versions (Debian's 1.13) have neither.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
  c10::DataPtr allocate(size_t bytes) override { return Take(bytes); }
  void copy_data(void* dest, const void* src, std::size_t count) const override { default_copy_data(dest, src, count); }
#else
  c10::DataPtr allocate(size_t bytes) const override { return Take(bytes); }
#endif
  c10::DeleterFnPtr raw_deleter() const override { return &CachingCpuAllocator::Release; }
  // Frees every cached block.
  void Trim();

  // Blocks under this size go to the system allocator directly: glibc reuses them without faults.
  static constexpr size_t kMinCachedBytes = 256 * 1024;
  // Blocks of kHugeBlockBytes and more (the all-pairs volume, full-resolution activations) are aligned to a huge
  // page and backed by transparent huge pages where the kernel allows.
  static constexpr size_t kHugePageBytes = size_t{2} << 20;
  static constexpr size_t kHugeBlockBytes = size_t{32} << 20;
  // Cached bytes a request that finds no block of its size may leave in the cache.
  static constexpr size_t kSlackBytes = size_t{512} << 20;

 private:
  explicit CachingCpuAllocator(size_t limit) : limit_(limit) {}
  static size_t SizeClass(size_t bytes);
  // A block from the cache, or a new one (the body of allocate()).
  c10::DataPtr Take(size_t bytes) const;
  struct CachedBlock {
    size_t size;
    void* data;
  };
  using Position = std::list<CachedBlock>::iterator;
  // Takes cached blocks out, released longest ago first, until at most `keep` bytes stay cached (the mutex held).
  std::vector<void*> Evict(size_t keep) const;
  // The deleter of every block, data and context alike (LibTorch's raw_deallocate, used by oneDNN, passes the data).
  static void Release(void* data);
  void Keep(void* data);
  // Records a released block in the cache (the mutex held); false, with nothing changed, when memory for the record
  // runs out (a deleter must not throw: the caller gives the block back to the system).
  bool Cache(size_t size, void* data) noexcept;

  mutable std::mutex mutex_;
  mutable std::unordered_map<void*, size_t> live_;       // cacheable blocks in use, by their size class
  mutable std::list<CachedBlock> released_;              // cached blocks, released longest ago first
  mutable std::map<size_t, std::deque<Position>> free_;  // the same blocks by size class, each class in release order
  mutable size_t cachedBytes_ = 0;
  size_t limit_;
};
