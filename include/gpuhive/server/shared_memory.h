// Triton's system shared memory extension: clients register POSIX shared memory regions
// (shm_open keys) by name; inputs are then read from, and outputs written to, a region instead of
// travelling in the request or response. Every access is bounds-checked against the registered
// window (offset, byte_size) and the object's real size, so a bad offset or size is a clear error,
// never a fault. A region unregistered while a request uses it stays mapped until that request is
// done (regions are shared_ptr-held).
//
// Thread safe.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "gpuhive/status.h"

namespace gpuhive::server {

struct SharedMemoryRegionInfo {
  std::string name;
  std::string key;        // the shm_open name
  uint64_t offset = 0;    // where the region starts in the shared memory object
  uint64_t byte_size = 0;
};

// One mapped region. data() is the start of the registered window.
class SharedMemoryRegion {
 public:
  SharedMemoryRegion(SharedMemoryRegionInfo info, void* base, size_t mapped_bytes)
      : info_(std::move(info)), base_(base), mapped_bytes_(mapped_bytes) {}
  ~SharedMemoryRegion();
  SharedMemoryRegion(const SharedMemoryRegion&) = delete;
  SharedMemoryRegion& operator=(const SharedMemoryRegion&) = delete;

  const SharedMemoryRegionInfo& info() const { return info_; }
  // The window [offset, offset + bytes) inside the region. Errors: kInvalidArgument when it does
  // not lie inside.
  StatusOr<char*> Window(uint64_t offset, uint64_t bytes) const;

 private:
  SharedMemoryRegionInfo info_;
  void* base_;  // the mapping (from the object's start)
  size_t mapped_bytes_;
};

class SharedMemoryRegistry {
 public:
  // Maps `key` (e.g. "/my_shm") and remembers it as `name`. Errors: kAlreadyExists (the name is
  // taken), kInvalidArgument (empty name or key, zero size, a window beyond the object's size),
  // kNotFound (no such shared memory object).
  Status Register(const SharedMemoryRegionInfo& info);
  // Forgets `name`; an empty name forgets every region. Unknown names are not an error (Triton).
  Status Unregister(const std::string& name);
  // Every region, or one. Errors: kNotFound for an unknown name.
  StatusOr<std::vector<SharedMemoryRegionInfo>> List(const std::string& name) const;
  // For a request naming a region. Errors: kInvalidArgument for an unknown name.
  StatusOr<std::shared_ptr<SharedMemoryRegion>> Find(const std::string& name) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<SharedMemoryRegion>> regions_;  // GUARDED_BY(mu_)
};

}  // namespace gpuhive::server
