// OS scheduling priority of worker threads on the CPU: the analogue of CUDA stream priorities.
#pragma once

namespace gpuhive::sched::detail {

// Raises the calling thread's nice value by `nice_increment` (lowering its priority; unprivileged
// processes may only lower). Threads it creates later (OpenMP teams) inherit it. Returns false when
// the OS refused; the worker then runs at the default priority.
bool LowerCurrentThreadPriority(int nice_increment);

}  // namespace gpuhive::sched::detail
