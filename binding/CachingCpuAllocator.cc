#include "CachingCpuAllocator.h"

#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
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

c10::DataPtr CachingCpuAllocator::allocate(size_t bytes) const {
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
      data = found->second.back();
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
    data = c10::alloc_cpu(size);
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
  while (cachedBytes_ > keep && !free_.empty()) {
    auto largest = std::prev(free_.end());
    evicted.push_back(largest->second.back());
    largest->second.pop_back();
    cachedBytes_ -= largest->first;
    if (largest->second.empty()) free_.erase(largest);
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
      if (cachedBytes_ + size <= limit_) {
        free_[size].push_back(data);
        cachedBytes_ += size;
        return;
      }
    }
  }
  c10::free_cpu(data);
}

void CachingCpuAllocator::Trim() {
  std::vector<void*> released;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    released = Evict(0);
  }
  for (void* data : released) c10::free_cpu(data);
}
