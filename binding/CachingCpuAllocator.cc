#include "CachingCpuAllocator.h"

#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <iterator>

namespace {

CachingCpuAllocator* installed = nullptr;

// A quarter of the machine's memory: enough for the working set of a 4K pair, never most of the machine.
size_t DefaultLimit() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long pageSize = sysconf(_SC_PAGESIZE);
  if (pages <= 0 || pageSize <= 0) return size_t{1} << 30;
  return static_cast<size_t>(pages) * static_cast<size_t>(pageSize) / 4;
}

// A cacheable block. Blocks of kHugeBlockBytes and more start on a huge-page boundary and ask the kernel for
// transparent huge pages (its 'madvise' mode, the usual default): a fresh block then faults once per 2 MB instead of
// once per 4 KB, which is most of the cost of the first requests at a new frame size. Smaller blocks stay on small
// pages: aligned to 2 MB too they made repeated requests slower. Every block goes back through c10::free_cpu, which is
// free() wherever posix_memalign exists, so both kinds are released alike.
void* AllocateBlock(size_t size) {
  if (size < CachingCpuAllocator::kHugeBlockBytes) return c10::alloc_cpu(size);
  void* data = nullptr;
  const int error = posix_memalign(&data, CachingCpuAllocator::kHugePageBytes, size);
  TORCH_CHECK(error == 0 && data != nullptr, "not enough memory: tried to allocate ", size, " bytes");
#ifdef MADV_HUGEPAGE
  madvise(data, size / CachingCpuAllocator::kHugePageBytes * CachingCpuAllocator::kHugePageBytes, MADV_HUGEPAGE);
#endif
  return data;
}

}  // namespace

void CachingCpuAllocator::Install() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* choice = std::getenv("OPTICAL_FLOW_ALLOCATOR");
    if (choice != nullptr && std::strcmp(choice, "system") == 0) return;
    // Never destroyed: tensors may outlive any scope, and each keeps this allocator's deleter.
    installed = new CachingCpuAllocator(DefaultLimit());
    c10::SetCPUAllocator(installed, /*priority=*/1);
  });
}

CachingCpuAllocator* CachingCpuAllocator::Installed() { return installed; }

size_t CachingCpuAllocator::SizeClass(size_t bytes) {
  // Eight classes per power of two: at most 12.5% more than asked for, and tensors of nearly equal sizes share.
  size_t power = kMinCachedBytes;
  while (power <= bytes / 2) power *= 2;
  const size_t step = power / 8;
  return (bytes + step - 1) / step * step;
}

c10::DataPtr CachingCpuAllocator::Take(size_t bytes) const {
  const c10::Device cpu(c10::DeviceType::CPU);
  if (bytes < kMinCachedBytes) {
    void* data = c10::alloc_cpu(bytes);
    return {data, data, &CachingCpuAllocator::Release, cpu};
  }
  const size_t size = SizeClass(bytes);
  void* data = nullptr;
  std::vector<void*> evicted;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = free_.find(size);
    if (found != free_.end()) {
      const Position newest = found->second.back();
      data = newest->data;
      released_.erase(newest);
      found->second.pop_back();
      if (found->second.empty()) free_.erase(found);
      cachedBytes_ -= size;
      live_[data] = size;
    } else {
      evicted = Evict(kSlackBytes);
    }
  }
  for (void* block : evicted) c10::free_cpu(block);
  if (data == nullptr) {
    data = AllocateBlock(size);
    try {
      std::lock_guard<std::mutex> lock(mutex_);
      live_[data] = size;
    } catch (...) {
      c10::free_cpu(data);
      throw;
    }
  }
  return {data, data, &CachingCpuAllocator::Release, cpu};
}

std::vector<void*> CachingCpuAllocator::Evict(size_t keep) const {
  std::vector<void*> evicted;
  while (cachedBytes_ > keep && !released_.empty()) {
    const CachedBlock oldest = released_.front();
    // Each class is in release order, so the oldest block of all is the first of its class.
    auto sizeClass = free_.find(oldest.size);
    sizeClass->second.pop_front();
    if (sizeClass->second.empty()) free_.erase(sizeClass);
    released_.pop_front();
    cachedBytes_ -= oldest.size;
    evicted.push_back(oldest.data);
  }
  return evicted;
}

void CachingCpuAllocator::Release(void* data) {
  if (installed == nullptr) {
    c10::free_cpu(data);
    return;
  }
  installed->Keep(data);
}

void CachingCpuAllocator::Keep(void* data) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto found = live_.find(data);
    if (found != live_.end()) {
      const size_t size = found->second;
      live_.erase(found);
      if (cachedBytes_ + size <= limit_ && Cache(size, data)) return;
    }
  }
  c10::free_cpu(data);
}

bool CachingCpuAllocator::Cache(size_t size, void* data) noexcept {
  try {
    released_.push_back({size, data});
  } catch (...) { return false; }
  try {
    free_[size].push_back(std::prev(released_.end()));
  } catch (...) {
    released_.pop_back();
    auto sizeClass = free_.find(size);
    if (sizeClass != free_.end() && sizeClass->second.empty()) free_.erase(sizeClass);
    return false;
  }
  cachedBytes_ += size;
  return true;
}

void CachingCpuAllocator::Trim() {
  std::vector<void*> released;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    released = Evict(0);
  }
  for (void* data : released) c10::free_cpu(data);
}
