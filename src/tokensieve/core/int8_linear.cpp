// A few rows of float32 activations times int8 weight codes with one float32 scale per output channel
// (tokensieve/weights.py's Int8Linear): out[m, n] = scale[n] * sum_k x[m, k] * code[n, k]. A decode step has one
// to a few rows, so the product is bound by reading the codes: each code is read once for every row, widened to
// float32 in registers and multiplied in float32, so the activations are never rounded (torch's fused int8
// product rounds them to bfloat16, which this CPU has no instructions for).
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <immintrin.h>

#include <algorithm>

namespace {

constexpr int64_t kMaxRows = 16;
constexpr int64_t kBlock = 4;  // rows whose sums stay in registers together

inline float lane_sum(__m256 v) {
  const __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  const __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(t, _mm_shuffle_ps(t, t, 1)));
}

// The dot products of `rows` activation rows with one row of codes.
template <int64_t R>
void dot_rows(const float* x, int64_t K, const int8_t* code, float* out) {
  __m256 low[R], high[R];
  for (int64_t r = 0; r < R; ++r) low[r] = high[r] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 16 <= K; k += 16) {
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(code + k));
    const __m256 c0 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(c));
    const __m256 c1 = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_unpackhi_epi64(c, c)));
    for (int64_t r = 0; r < R; ++r) {
      low[r] = _mm256_fmadd_ps(_mm256_loadu_ps(x + r * K + k), c0, low[r]);
      high[r] = _mm256_fmadd_ps(_mm256_loadu_ps(x + r * K + k + 8), c1, high[r]);
    }
  }
  for (int64_t r = 0; r < R; ++r) {
    float sum = lane_sum(_mm256_add_ps(low[r], high[r]));
    for (int64_t j = k; j < K; ++j) sum += x[r * K + j] * static_cast<float>(code[j]);
    out[r] = sum;
  }
}

// Rows in blocks of up to four per output channel: the channel's codes stay in L1 between blocks, so they are read
// from memory once for all rows.
void product(const float* x, const int8_t* codes, const float* scales, int64_t M, int64_t K, int64_t N,
             float* out) {
  at::parallel_for(0, N, 16, [&](int64_t begin, int64_t end) {
    float sums[kBlock];
    for (int64_t n = begin; n < end; ++n) {
      const int8_t* code = codes + n * K;
      for (int64_t r0 = 0; r0 < M; r0 += kBlock) {
        const int64_t R = std::min(kBlock, M - r0);
        const float* rows = x + r0 * K;
        switch (R) {
          case 1: dot_rows<1>(rows, K, code, sums); break;
          case 2: dot_rows<2>(rows, K, code, sums); break;
          case 3: dot_rows<3>(rows, K, code, sums); break;
          default: dot_rows<4>(rows, K, code, sums); break;
        }
        for (int64_t r = 0; r < R; ++r) out[(r0 + r) * N + n] = sums[r] * scales[n];
      }
    }
  });
}

}  // namespace

// rows [m, k] float32 (m <= 16), codes [n, k] int8, scales [n] float32 -> [m, n] float32.
torch::Tensor int8_linear(const torch::Tensor& rows, const torch::Tensor& codes, const torch::Tensor& scales) {
  TORCH_CHECK(rows.dim() == 2 && rows.scalar_type() == torch::kFloat32 && rows.device().is_cpu(),
              "rows must be float32 [m, k] on CPU");
  TORCH_CHECK(codes.dim() == 2 && codes.scalar_type() == torch::kInt8 && codes.size(1) == rows.size(1),
              "codes must be int8 [n, k] with the rows' k");
  TORCH_CHECK(scales.dim() == 1 && scales.scalar_type() == torch::kFloat32 && scales.size(0) == codes.size(0),
              "scales must be float32 [n]");
  const int64_t M = rows.size(0), K = rows.size(1), N = codes.size(0);
  TORCH_CHECK(M >= 1 && M <= kMaxRows, "int8_linear takes 1 to ", kMaxRows, " rows, got ", M);
  const auto x = rows.contiguous();
  const auto c = codes.contiguous();
  const auto s = scales.contiguous();
  auto out = torch::empty({M, N}, torch::kFloat32);
  const float* xp = x.data_ptr<float>();
  const int8_t* cp = c.data_ptr<int8_t>();
  const float* sp = s.data_ptr<float>();
  float* op = out.data_ptr<float>();
  product(xp, cp, sp, M, K, N, op);
  return out;
}
