// A quantized layer's rows read one at a time (core/quant.py's QuantizedRows, core/quant_layer.py's parts), shared
// by dequantize_rows.cpp and quest_step.cpp. Each element is computed as torch computes it, code * step + min in
// float32 with two roundings (the kernels are built with -ffp-contract=off).
#pragma once
#include <torch/extension.h>
#include <immintrin.h>
#include <algorithm>
#include <cstring>

namespace tokensieve {

struct Rows {  // a [b, h, n, c] view: rows contiguous, sequences and heads strided
  const uint8_t* codes;
  int64_t s0, s1, s2;
};

struct Scales {  // a [b, h, m, c] float16 view
  const at::Half* data;
  int64_t s0, s1, s2;
};

inline Rows rows_of(const torch::Tensor& t) {
  TORCH_CHECK(t.scalar_type() == torch::kUInt8 && t.dim() == 4 && t.stride(3) == 1, "codes must be uint8 rows");
  return {t.data_ptr<uint8_t>(), t.stride(0), t.stride(1), t.stride(2)};
}

inline Scales scales_of(const torch::Tensor& t) {
  TORCH_CHECK(t.scalar_type() == torch::kFloat16 && t.dim() == 4 && t.stride(3) == 1, "scales must be float16");
  return {t.data_ptr<at::Half>(), t.stride(0), t.stride(1), t.stride(2)};
}

// Eight codes from channel `d` (a multiple of 8) as floats: int8 one byte each, int4 two a byte (low nibble first).
inline __m256 codes8(const uint8_t* row, int64_t d, int bits) {
  __m128i bytes;
  if (bits == 8) {
    int64_t eight;
    std::memcpy(&eight, row + d, 8);
    bytes = _mm_cvtsi64_si128(eight);
  } else {
    int32_t four;
    std::memcpy(&four, row + d / 2, 4);
    const __m128i packed = _mm_cvtsi32_si128(four), nibble = _mm_set1_epi8(15);
    bytes = _mm_unpacklo_epi8(_mm_and_si128(packed, nibble), _mm_and_si128(_mm_srli_epi16(packed, 4), nibble));
  }
  return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(bytes));
}

// A whole row's D codes (D a multiple of 8) as floats into out: sixteen bytes at a time rather than codes8's four,
// then codes8 for channels past the last multiple of 32.
inline void codes_row(const uint8_t* row, int64_t D, int bits, float* out) {
  const __m128i nibble = _mm_set1_epi8(15);
  int64_t d = 0;
  for (; d + 32 <= D; d += 32) {
    __m128i part[2];
    if (bits == 8) {
      part[0] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + d));
      part[1] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + d + 16));
    } else {
      const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(row + d / 2));
      const __m128i low = _mm_and_si128(packed, nibble), high = _mm_and_si128(_mm_srli_epi16(packed, 4), nibble);
      part[0] = _mm_unpacklo_epi8(low, high), part[1] = _mm_unpackhi_epi8(low, high);
    }
    for (int j = 0; j < 2; ++j) {
      _mm256_storeu_ps(out + d + 16 * j, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(part[j])));
      _mm256_storeu_ps(out + d + 16 * j + 8, _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(part[j], 8))));
    }
  }
  for (; d < D; d += 8) _mm256_storeu_ps(out + d, codes8(row, d, bits));
}

inline __m256 halves8(const at::Half* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// A QuantizedRows' six tensors, read one row at a time.
struct Coded {
  Rows kc, vc;
  Scales kl, ks, vl, vs;
  int64_t bits, group, value_group, n, D;

  Coded(const torch::Tensor& key_codes, const torch::Tensor& key_low, const torch::Tensor& key_step,
        const torch::Tensor& value_codes, const torch::Tensor& value_low, const torch::Tensor& value_step,
        int64_t bits_, int64_t group_)
      : kc(rows_of(key_codes)), vc(rows_of(value_codes)), kl(scales_of(key_low)), ks(scales_of(key_step)),
        vl(scales_of(value_low)), vs(scales_of(value_step)), bits(bits_), group(group_) {
    TORCH_CHECK(bits == 8 || bits == 4, "bits must be 8 or 4");
    D = key_low.size(3);
    value_group = std::min(group, D);
    n = key_codes.size(2);
    TORCH_CHECK(D % 8 == 0 && value_group % 8 == 0, "head_dim must be a multiple of 8");
  }

  // Row r of sequence b, head h, into kout and vout: code * step, then + min (two roundings, as torch computes).
  void row(int64_t b, int64_t h, int64_t r, float* kout, float* vout) const {
    key(b, h, r, kout);
    value(b, h, r, vout);
  }

  // Row r's key alone: its channels' (min, step) in the row's token group.
  void key(int64_t b, int64_t h, int64_t r, float* kout) const {
    TORCH_CHECK(r >= 0 && r < n, "a selected row is outside the coded rows");
    const uint8_t* krow = kc.codes + b * kc.s0 + h * kc.s1 + r * kc.s2;
    const at::Half* klow = kl.data + b * kl.s0 + h * kl.s1 + (r / group) * kl.s2;
    const at::Half* kstep = ks.data + b * ks.s0 + h * ks.s1 + (r / group) * ks.s2;
    codes_row(krow, D, static_cast<int>(bits), kout);
    for (int64_t d = 0; d < D; d += 8)
      _mm256_storeu_ps(kout + d, _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(kout + d), halves8(kstep + d)),
                                               halves8(klow + d)));
  }

  // Row r's value alone: its own per-channel-group (min, step).
  void value(int64_t b, int64_t h, int64_t r, float* vout) const {
    TORCH_CHECK(r >= 0 && r < n, "a selected row is outside the coded rows");
    const uint8_t* vrow = vc.codes + b * vc.s0 + h * vc.s1 + r * vc.s2;
    const at::Half* vlow = vl.data + b * vl.s0 + h * vl.s1 + r * vl.s2;
    const at::Half* vstep = vs.data + b * vs.s0 + h * vs.s1 + r * vs.s2;
    codes_row(vrow, D, static_cast<int>(bits), vout);
    for (int64_t start = 0; start < D; start += value_group) {  // one (min, step) per channel group
      const int64_t g = start / value_group;
      const __m256 step = _mm256_set1_ps(static_cast<float>(vstep[g]));
      const __m256 low = _mm256_set1_ps(static_cast<float>(vlow[g]));
      for (int64_t d = start; d < std::min(start + value_group, D); d += 8)
        _mm256_storeu_ps(vout + d, _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(vout + d), step), low));
    }
  }
};

struct Plain {  // a [b, h, n, D] float32 view: rows contiguous
  const float* data = nullptr;
  int64_t s0 = 0, s1 = 0, s2 = 0, n = 0;

  Plain() = default;  // no rows
  explicit Plain(const torch::Tensor& t) {
    TORCH_CHECK(t.scalar_type() == torch::kFloat32 && t.dim() == 4 && t.stride(3) == 1, "rows must be float32");
    data = t.data_ptr<float>();
    s0 = t.stride(0), s1 = t.stride(1), s2 = t.stride(2), n = t.size(2);
  }

  void copy(int64_t b, int64_t h, int64_t r, float* out, int64_t D) const {
    TORCH_CHECK(r >= 0 && r < n, "a selected row is outside the full-precision rows");
    std::memcpy(out, data + b * s0 + h * s1 + r * s2, D * sizeof(float));
  }
};

}  // namespace tokensieve
