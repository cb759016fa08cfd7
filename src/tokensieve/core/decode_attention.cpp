// Decode attention on CPU: one query per head (a one-token step) against a long float32 KV cache, as one pass per
// chunk of 256 tokens that reads each key and value row once for all the query heads sharing it (GQA), then merges
// the chunks' partial softmaxes. Register-blocked for AVX2 + FMA; torch splits the chunks over its threads, so
// three KV heads keep two cores busy. Built on first use by `tokensieve.core.decode_kernel`, which routes only the
// calls it can take here (see its docstring); docs/DECODE.md has the measured gain.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <algorithm>
#include <cmath>
#include <limits>
#include <tuple>

#include "decode_attention.h"
#include "simd.h"

namespace {

using tokensieve::exp_nonpositive;
using tokensieve::exponentiate;
using tokensieve::sum4;

constexpr int64_t kChunk = 256;            // tokens per work item
constexpr int64_t kRows = 3;               // query heads per register block
constexpr int64_t kMaxHeadsPerGroup = 16;  // query heads per KV head
constexpr int64_t kTokens = 4;             // key rows per register block (scores)
constexpr int64_t kLanes = 8;              // floats per AVX2 vector
constexpr int64_t kSpan = 32;              // head_dim columns per register block (values)
constexpr int64_t kMaxHeadDim = 256;       // head_dim the serial path's stack buffers hold

void check(const torch::Tensor& t, const char* name) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == torch::kFloat32, name, " must be a float32 CPU tensor");
  TORCH_CHECK(t.dim() == 4 && t.size(0) == 1, name, " must be [1, heads, tokens, head_dim]");
  TORCH_CHECK(t.stride(3) == 1 && t.stride(2) == t.size(3), name, "'s rows must be contiguous");
  TORCH_CHECK(t.size(3) % kSpan == 0, name, "'s head_dim must be a multiple of 32");
}

// w[r * kChunk + n] = scale * q[r] . k[n], for `rows` query heads and the chunk's `len` key rows.
template <int rows>
void score_block(const float* q, const float* k, int64_t D, int64_t len, float scale, float* out) {
  int64_t n = 0;
  for (; n + kTokens <= len; n += kTokens) {
    __m256 acc[rows][kTokens];
    for (int r = 0; r < rows; ++r)
      for (int t = 0; t < kTokens; ++t) acc[r][t] = _mm256_setzero_ps();
    for (int64_t d = 0; d < D; d += kLanes) {
      __m256 key[kTokens];
      for (int t = 0; t < kTokens; ++t) key[t] = _mm256_loadu_ps(k + (n + t) * D + d);
      for (int r = 0; r < rows; ++r) {
        const __m256 qv = _mm256_loadu_ps(q + r * D + d);
        for (int t = 0; t < kTokens; ++t) acc[r][t] = _mm256_fmadd_ps(qv, key[t], acc[r][t]);
      }
    }
    for (int r = 0; r < rows; ++r)
      _mm_storeu_ps(out + r * kChunk + n,
                    _mm_mul_ps(sum4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]), _mm_set1_ps(scale)));
  }
  for (; n < len; ++n)
    for (int r = 0; r < rows; ++r) {
      float acc = 0.f;
      for (int64_t d = 0; d < D; ++d) acc += q[r * D + d] * k[n * D + d];
      out[r * kChunk + n] = acc * scale;
    }
}

// o[r] = sum over the chunk's rows n of w[r * kChunk + n] * v[n], for `rows` query heads.
template <int rows>
void weigh_block(const float* w, const float* v, int64_t D, int64_t len, float* o) {
  constexpr int vecs = kSpan / kLanes;
  for (int64_t d0 = 0; d0 < D; d0 += kSpan) {
    __m256 acc[rows][vecs];
    for (int r = 0; r < rows; ++r)
      for (int j = 0; j < vecs; ++j) acc[r][j] = _mm256_setzero_ps();
    for (int64_t n = 0; n < len; ++n) {
      __m256 value[vecs];
      for (int j = 0; j < vecs; ++j) value[j] = _mm256_loadu_ps(v + n * D + d0 + j * kLanes);
      for (int r = 0; r < rows; ++r) {
        const __m256 p = _mm256_set1_ps(w[r * kChunk + n]);
        for (int j = 0; j < vecs; ++j) acc[r][j] = _mm256_fmadd_ps(p, value[j], acc[r][j]);
      }
    }
    for (int r = 0; r < rows; ++r)
      for (int j = 0; j < vecs; ++j) _mm256_storeu_ps(o + r * D + d0 + j * kLanes, acc[r][j]);
  }
}

}  // namespace

// One KV head's R query rows over N contiguous key and value rows, serially: chunk by chunk as `attend` computes
// them, each chunk's partial softmax merged into a running one -> out [R, D].
void tokensieve::attend_rows(const float* q, int64_t R, const float* k, const float* v, int64_t N, int64_t D,
                             float scale, float* out) {
  TORCH_CHECK(R <= kMaxHeadsPerGroup && D % kSpan == 0 && D <= kMaxHeadDim, "unsupported heads or head_dim");
  alignas(32) float w[kMaxHeadsPerGroup * kChunk];
  alignas(32) float part[kMaxHeadsPerGroup * kMaxHeadDim];
  float M[kMaxHeadsPerGroup], L[kMaxHeadsPerGroup];
  for (int64_t r = 0; r < R; ++r) M[r] = -std::numeric_limits<float>::infinity(), L[r] = 0.f;
  for (int64_t i = 0; i < R * D; ++i) out[i] = 0.f;
  for (int64_t lo = 0; lo < N; lo += kChunk) {
    const int64_t len = std::min(N, lo + kChunk) - lo;
    for (int64_t r = 0; r < R; r += kRows) {
      const int64_t rows = std::min(kRows, R - r);
      if (rows == 3) score_block<3>(q + r * D, k + lo * D, D, len, scale, w + r * kChunk);
      else if (rows == 2) score_block<2>(q + r * D, k + lo * D, D, len, scale, w + r * kChunk);
      else score_block<1>(q + r * D, k + lo * D, D, len, scale, w + r * kChunk);
    }
    float m[kMaxHeadsPerGroup], l[kMaxHeadsPerGroup];
    for (int64_t r = 0; r < R; ++r) std::tie(m[r], l[r]) = exponentiate(w + r * kChunk, len);
    for (int64_t r = 0; r < R; r += kRows) {
      const int64_t rows = std::min(kRows, R - r);
      if (rows == 3) weigh_block<3>(w + r * kChunk, v + lo * D, D, len, part + r * D);
      else if (rows == 2) weigh_block<2>(w + r * kChunk, v + lo * D, D, len, part + r * D);
      else weigh_block<1>(w + r * kChunk, v + lo * D, D, len, part + r * D);
    }
    for (int64_t r = 0; r < R; ++r) {  // rescale the running sum and this chunk's to their common maximum
      const float top = std::max(M[r], m[r]), old = std::exp(M[r] - top), now = std::exp(m[r] - top);
      L[r] = L[r] * old + l[r] * now;
      for (int64_t d = 0; d < D; ++d) out[r * D + d] = out[r * D + d] * old + part[r * D + d] * now;
      M[r] = top;
    }
  }
  for (int64_t r = 0; r < R; ++r)
    for (int64_t d = 0; d < D; ++d) out[r * D + d] /= L[r];
}

// query [1, H, 1, D], keys and values [1, G, N, D] (rows contiguous; heads may be strided, as a cache buffer's
// first N rows are) -> softmax(scale * q k^T) v as [1, H, 1, D]; query head h reads KV head h / (H / G).
torch::Tensor attend(const torch::Tensor& query, const torch::Tensor& keys, const torch::Tensor& values,
                     double scale) {
  check(keys, "keys");
  check(values, "values");
  TORCH_CHECK(query.device().is_cpu() && query.scalar_type() == torch::kFloat32, "query must be a float32 CPU tensor");
  TORCH_CHECK(query.dim() == 4 && query.size(0) == 1 && query.size(2) == 1, "query must be [1, heads, 1, head_dim]");
  const auto q = query.contiguous();
  const int64_t H = q.size(1), D = q.size(3), G = keys.size(1), N = keys.size(2);
  TORCH_CHECK(H % G == 0 && H / G <= kMaxHeadsPerGroup && keys.size(3) == D, "unsupported heads or head_dim");
  TORCH_CHECK(N > 0 && values.size(1) == G && values.size(2) == N && values.size(3) == D,
              "keys and values must be non-empty and of one shape");
  const int64_t R = H / G, chunks = (N + kChunk - 1) / kChunk;
  auto part_o = torch::empty({chunks, H, D}, q.options());
  auto part_ml = torch::empty({chunks, H, 2}, q.options());
  const float *qp = q.data_ptr<float>(), *kp = keys.data_ptr<float>(), *vp = values.data_ptr<float>();
  float *po = part_o.data_ptr<float>(), *pml = part_ml.data_ptr<float>();
  const int64_t ks = keys.stride(1), vs = values.stride(1);
  const float s = static_cast<float>(scale);
  at::parallel_for(0, G * chunks, 1, [&](int64_t begin, int64_t end) {
    alignas(32) float w[kMaxHeadsPerGroup * kChunk];
    for (int64_t item = begin; item < end; ++item) {
      const int64_t g = item / chunks, c = item % chunks, lo = c * kChunk, len = std::min(N, lo + kChunk) - lo;
      const float* k = kp + g * ks + lo * D;
      const float* v = vp + g * vs + lo * D;
      for (int64_t r = 0; r < R; r += kRows) {
        const int64_t rows = std::min(kRows, R - r);
        const float* qr = qp + (g * R + r) * D;
        float* wr = w + r * kChunk;
        if (rows == 3) score_block<3>(qr, k, D, len, s, wr);
        else if (rows == 2) score_block<2>(qr, k, D, len, s, wr);
        else score_block<1>(qr, k, D, len, s, wr);
      }
      for (int64_t r = 0; r < R; ++r) {
        const auto [m, l] = exponentiate(w + r * kChunk, len);
        pml[(c * H + g * R + r) * 2] = m;
        pml[(c * H + g * R + r) * 2 + 1] = l;
      }
      for (int64_t r = 0; r < R; r += kRows) {
        const int64_t rows = std::min(kRows, R - r);
        float* o = po + (c * H + g * R + r) * D;
        if (rows == 3) weigh_block<3>(w + r * kChunk, v, D, len, o);
        else if (rows == 2) weigh_block<2>(w + r * kChunk, v, D, len, o);
        else weigh_block<1>(w + r * kChunk, v, D, len, o);
      }
    }
  });
  // Merge the chunks: rescale each partial sum to the overall maximum.
  auto out = torch::empty({1, H, 1, D}, q.options());
  float* op = out.data_ptr<float>();
  for (int64_t h = 0; h < H; ++h) {
    float M = -std::numeric_limits<float>::infinity(), L = 0.f;
    for (int64_t c = 0; c < chunks; ++c) M = std::max(M, pml[(c * H + h) * 2]);
    for (int64_t d = 0; d < D; ++d) op[h * D + d] = 0.f;
    for (int64_t c = 0; c < chunks; ++c) {
      const float f = std::exp(pml[(c * H + h) * 2] - M);
      L += f * pml[(c * H + h) * 2 + 1];
      for (int64_t d = 0; d < D; ++d) op[h * D + d] += f * po[(c * H + h) * D + d];
    }
    for (int64_t d = 0; d < D; ++d) op[h * D + d] /= L;
  }
  return out;
}
