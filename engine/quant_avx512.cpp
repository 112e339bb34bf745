#include "engine/quant_kernels.h"
namespace folio::engine::quant {
void add_avx512_kernels(KernelTable&) {}
}
