// AVX2 helpers shared by the CPU kernels (decode_attention.cpp, quest_step.cpp).
#pragma once
#include <immintrin.h>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

namespace tokensieve {

// The lane sums of four vectors, as one 128-bit vector.
inline __m128 sum4(__m256 a, __m256 b, __m256 c, __m256 d) {
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// e^x for x <= 0 (Cephes' expf: range reduction by ln 2, a degree-5 polynomial; relative error about 1e-7).
inline __m256 exp_nonpositive(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.3f));
  __m256 fx = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), x);
  x = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), x);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, x, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(x, x), _mm256_add_ps(x, _mm256_set1_ps(1.f)));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(fx), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(e));
}

// Softmax numerators of `len` scores in place, relative to their maximum (a NaN score is passed over by it);
// returns (max, sum).
inline std::pair<float, float> exponentiate(float* s, int64_t len) {
  __m256 most = _mm256_set1_ps(-std::numeric_limits<float>::infinity());
  int64_t n = 0;
  for (; n + 8 <= len; n += 8) most = _mm256_max_ps(_mm256_loadu_ps(s + n), most);
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, most);
  float m = -std::numeric_limits<float>::infinity();
  for (float x : lanes) m = std::max(m, x);
  for (; n < len; ++n) m = std::max(m, s[n]);
  const __m256 mv = _mm256_set1_ps(m);
  __m256 total = _mm256_setzero_ps();
  for (n = 0; n + 8 <= len; n += 8) {
    const __m256 e = exp_nonpositive(_mm256_sub_ps(_mm256_loadu_ps(s + n), mv));
    _mm256_storeu_ps(s + n, e);
    total = _mm256_add_ps(total, e);
  }
  _mm256_store_ps(lanes, total);
  float l = 0.f;
  for (float x : lanes) l += x;
  for (; n < len; ++n) l += (s[n] = std::exp(s[n] - m));
  return {m, l};
}

}  // namespace tokensieve
