// Decode attention for one KV head, shared by the CPU kernels (defined in decode_attention.cpp).
#pragma once
#include <torch/extension.h>

namespace tokensieve {

// softmax(scale * q k^T) v for R query rows q [R, D] over N contiguous rows k, v [N, D] -> out [R, D]; serial.
// D a multiple of 32 and at most 256, R at most 16.
void attend_rows(const float* q, int64_t R, const float* k, const float* v, int64_t N, int64_t D, float scale,
                 float* out);

}  // namespace tokensieve
