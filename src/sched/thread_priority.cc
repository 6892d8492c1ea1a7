#include "sched/thread_priority.h"

#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

namespace gpuhive::sched::detail {

bool LowerCurrentThreadPriority(int nice_increment) {
  if (nice_increment <= 0) return true;
#if defined(__linux__)
  // On Linux the nice value is per thread; PRIO_PROCESS with a thread id addresses one thread.
  auto tid = static_cast<id_t>(syscall(SYS_gettid));
  errno = 0;
  int current = getpriority(PRIO_PROCESS, tid);
  if (current == -1 && errno != 0) return false;
  int target = current + nice_increment;
  if (target > 19) target = 19;
  return setpriority(PRIO_PROCESS, tid, target) == 0;
#else
  return false;
#endif
}

}  // namespace gpuhive::sched::detail
