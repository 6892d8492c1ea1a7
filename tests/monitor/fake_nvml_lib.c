/* A stand-in libnvidia-ml for nvml_dlopen_test: one GPU whose memory NVML's v1 call reports with
 * the driver's reserved memory counted as used (as the real library did on an H200), and, when
 * built with FAKE_NVML_V2, the v2 call that reports it apart. Only the symbols gpuhive requires
 * plus the memory calls are exported. */
#include <stdlib.h>
#include <string.h>

/* FAKE_NVML_FAIL_EVERY=N (the soak test): every Nth memory query fails with NVML_ERROR_UNKNOWN, as
 * a GPU falling off the bus or a driver hiccup would. */
static int fail_now(void) {
  static unsigned calls;
  const char* every = getenv("FAKE_NVML_FAIL_EVERY");
  int n = every ? atoi(every) : 0;
  return n > 0 && (++calls % (unsigned)n) == 0;
}

struct fake_memory_v1 { unsigned long long total, free, used; };
struct fake_memory_v2 { unsigned version; unsigned long long total, reserved, free, used; };

#define GIB (1024ull * 1024ull * 1024ull)
#define MIB (1024ull * 1024ull)

int nvmlInit_v2(void) { return 0; }
int nvmlShutdown(void) { return 0; }
int nvmlDeviceGetCount_v2(unsigned* n) { *n = 1; return 0; }
int nvmlDeviceGetHandleByIndex_v2(unsigned i, void** d) { *d = (void*)0x1; return i == 0 ? 0 : 2; }
int nvmlDeviceGetName(void* d, char* name, unsigned len) { strncpy(name, "Fake H200", len); return 0; }
int nvmlDeviceGetMemoryInfo(void* d, struct fake_memory_v1* m) {
  if (fail_now()) return 999; /* NVML_ERROR_UNKNOWN */
  m->total = 140 * GIB; m->used = 1142 * MIB; m->free = m->total - m->used;
  return 0;
}
#ifdef FAKE_NVML_V2
int nvmlDeviceGetMemoryInfo_v2(void* d, struct fake_memory_v2* m) {
  if (fail_now()) return 999;
  /* NVML_STRUCT_VERSION(Memory, 2): the struct's size with the version in the top byte. */
  if (m->version != ((unsigned)sizeof(struct fake_memory_v2) | (2u << 24))) return 25; /* ARGUMENT_VERSION_MISMATCH */
  m->total = 140 * GIB; m->reserved = 615 * MIB; m->used = 527 * MIB; m->free = m->total - m->reserved - m->used;
  return 0;
}
#endif
