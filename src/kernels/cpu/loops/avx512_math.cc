#include "kernels/cpu/loops/avx512_math.h"

#include <dnnl.hpp>

namespace gpuhive::cpu::loops {

bool Avx512Usable() {
#ifdef GPUHIVE_HAVE_AVX512_PATHS
  static const bool use = [] {
    const auto isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
    const auto want = static_cast<unsigned>(dnnl::cpu_isa::avx512_core);
    return __builtin_cpu_supports("avx512f") && (isa & want) == want;
  }();
  return use;
#else
  return false;
#endif
}

}  // namespace gpuhive::cpu::loops
