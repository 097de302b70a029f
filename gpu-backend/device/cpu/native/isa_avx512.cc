// AVX-512F kernels (plus FMA/F16C). Only called when the CPU reports avx512f at run time.
#include <immintrin.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels.h"

#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma,f16c")

namespace moe {
namespace avx512_isa {

#include "avx512_vec.inc"
#include "isa_body.inc"

}  // namespace avx512_isa

const KernelTable kAvx512Kernels = {"avx512", avx512_isa::matmul_rows, nullptr, avx512_isa::attend,
                                    avx512_isa::read_sum,
                                    avx512_isa::exp_sub_sum, avx512_isa::swiglu, avx512_isa::store_f16};

}  // namespace moe

#pragma GCC pop_options
