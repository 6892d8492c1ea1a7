#include "gpuhive/server/shared_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace gpuhive::server {

SharedMemoryRegion::~SharedMemoryRegion() {
  if (base_ != nullptr && base_ != MAP_FAILED) munmap(base_, mapped_bytes_);
}

StatusOr<char*> SharedMemoryRegion::Window(uint64_t offset, uint64_t bytes) const {
  if (offset > info_.byte_size || bytes > info_.byte_size - offset) {
    return InvalidArgument("shared memory region '{}': {} bytes at offset {} exceed its {} bytes", info_.name,
                           bytes, offset, info_.byte_size);
  }
  return static_cast<char*>(base_) + info_.offset + offset;
}

Status SharedMemoryRegistry::Register(const SharedMemoryRegionInfo& info) {
  if (info.name.empty()) return InvalidArgument("a shared memory region needs a name");
  if (info.key.empty()) return InvalidArgument("shared memory region '{}' needs a key", info.name);
  if (info.byte_size == 0) return InvalidArgument("shared memory region '{}': byte_size must be > 0", info.name);
  if (info.offset > UINT64_MAX - info.byte_size) {
    return InvalidArgument("shared memory region '{}': offset + byte_size overflows", info.name);
  }
  {
    std::lock_guard lock(mu_);
    if (regions_.count(info.name)) {
      return AlreadyExists("shared memory region '{}' is already registered", info.name);
    }
  }
  const int fd = shm_open(info.key.c_str(), O_RDWR, 0);
  if (fd < 0) {
    const int err = errno;
    if (err == ENOENT) return NotFound("shared memory key '{}' does not exist", info.key);
    return InvalidArgument("cannot open shared memory key '{}': {}", info.key, std::strerror(err));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    close(fd);
    return InvalidArgument("cannot stat shared memory key '{}'", info.key);
  }
  const uint64_t end = info.offset + info.byte_size;
  if (static_cast<uint64_t>(st.st_size) < end) {
    close(fd);
    return InvalidArgument("shared memory region '{}': offset {} + byte_size {} exceed the {} bytes of key '{}'",
                           info.name, info.offset, info.byte_size, st.st_size, info.key);
  }
  void* base = mmap(nullptr, end, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (base == MAP_FAILED) return InvalidArgument("cannot map shared memory key '{}': {}", info.key, std::strerror(errno));
  auto region = std::make_shared<SharedMemoryRegion>(info, base, end);
  std::lock_guard lock(mu_);
  if (!regions_.emplace(info.name, std::move(region)).second) {
    return AlreadyExists("shared memory region '{}' is already registered", info.name);
  }
  return Status::OK();
}

Status SharedMemoryRegistry::Unregister(const std::string& name) {
  std::lock_guard lock(mu_);
  if (name.empty()) {
    regions_.clear();
  } else {
    regions_.erase(name);
  }
  return Status::OK();
}

StatusOr<std::vector<SharedMemoryRegionInfo>> SharedMemoryRegistry::List(const std::string& name) const {
  std::lock_guard lock(mu_);
  std::vector<SharedMemoryRegionInfo> out;
  if (!name.empty()) {
    auto it = regions_.find(name);
    if (it == regions_.end()) return NotFound("no shared memory region '{}'", name);
    out.push_back(it->second->info());
    return out;
  }
  for (const auto& [n, r] : regions_) out.push_back(r->info());
  return out;
}

StatusOr<std::shared_ptr<SharedMemoryRegion>> SharedMemoryRegistry::Find(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = regions_.find(name);
  if (it == regions_.end()) return InvalidArgument("no shared memory region '{}' is registered", name);
  return it->second;
}

}  // namespace gpuhive::server
