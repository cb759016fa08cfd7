// The coded rows a selector picked, dequantized in one pass (core/quant.py's QuantizedRows.dequantize_rows): for
// each (sequence, head, selected row) the row's codes are unpacked and scaled, keys by their channel's (min, step)
// in the row's token group, values by their own row's per-channel-group (min, step). Each element is computed as
// torch computes it there, code * step + min in float32 with two roundings (built with -ffp-contract=off), so the
// results are bit-identical; what changes is one loop instead of about twenty small tensor operations.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <cstring>

namespace {

struct Rows {  // a [b, h, n, c] view: rows contiguous, sequences and heads strided
  const uint8_t* codes;
  int64_t s0, s1, s2;
};

struct Scales {  // a [b, h, m, c] float16 view
  const at::Half* data;
  int64_t s0, s1, s2;
};

Rows rows_of(const torch::Tensor& t) {
  TORCH_CHECK(t.scalar_type() == torch::kUInt8 && t.dim() == 4 && t.stride(3) == 1, "codes must be uint8 rows");
  return {t.data_ptr<uint8_t>(), t.stride(0), t.stride(1), t.stride(2)};
}

Scales scales_of(const torch::Tensor& t) {
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
    TORCH_CHECK(r >= 0 && r < n, "a selected row is outside the coded rows");
    const uint8_t* krow = kc.codes + b * kc.s0 + h * kc.s1 + r * kc.s2;
    const uint8_t* vrow = vc.codes + b * vc.s0 + h * vc.s1 + r * vc.s2;
    const at::Half* klow = kl.data + b * kl.s0 + h * kl.s1 + (r / group) * kl.s2;
    const at::Half* kstep = ks.data + b * ks.s0 + h * ks.s1 + (r / group) * ks.s2;
    const at::Half* vlow = vl.data + b * vl.s0 + h * vl.s1 + r * vl.s2;
    const at::Half* vstep = vs.data + b * vs.s0 + h * vs.s1 + r * vs.s2;
    for (int64_t d = 0; d < D; d += 8) {
      _mm256_storeu_ps(kout + d, _mm256_add_ps(_mm256_mul_ps(codes8(krow, d, bits), halves8(kstep + d)),
                                               halves8(klow + d)));
      const int64_t g = d / value_group;
      const __m256 step = _mm256_set1_ps(static_cast<float>(vstep[g]));
      const __m256 low = _mm256_set1_ps(static_cast<float>(vlow[g]));
      _mm256_storeu_ps(vout + d, _mm256_add_ps(_mm256_mul_ps(codes8(vrow, d, bits), step), low));
    }
  }
};

struct Plain {  // a [b, h, n, D] float32 view: rows contiguous
  const float* data;
  int64_t s0, s1, s2, n;

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

}  // namespace

// rows [b, h, k] (indices into the coded rows) -> keys, values [b, h, k, dim] float32.
std::vector<torch::Tensor> dequantize_rows(const torch::Tensor& rows, const torch::Tensor& key_codes,
                                           const torch::Tensor& key_low, const torch::Tensor& key_step,
                                           const torch::Tensor& value_codes, const torch::Tensor& value_low,
                                           const torch::Tensor& value_step, int64_t bits, int64_t group) {
  TORCH_CHECK(rows.scalar_type() == torch::kInt64 && rows.dim() == 3, "rows must be int64 [b, h, k]");
  const Coded coded(key_codes, key_low, key_step, value_codes, value_low, value_step, bits, group);
  const auto idx = rows.contiguous();
  const int64_t B = idx.size(0), H = idx.size(1), K = idx.size(2), D = coded.D;
  auto keys = torch::empty({B, H, K, D}, torch::kFloat32);
  auto values = torch::empty({B, H, K, D}, torch::kFloat32);
  const int64_t* ip = idx.data_ptr<int64_t>();
  float *kp = keys.data_ptr<float>(), *vp = values.data_ptr<float>();
  at::parallel_for(0, B * H * K, 64, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item)
      coded.row(item / (H * K), item / K % H, ip[item], kp + item * D, vp + item * D);
  });
  return {keys, values};
}

// A quantized layer's rows at slots [b, h, k], in token order: slots below `sinks` from the sink rows, then the
// coded rows, then the newest full-precision rows -> keys, values [b, h, k, dim] float32.
std::vector<torch::Tensor> gather_layer(const torch::Tensor& slots, const torch::Tensor& head_keys,
                                        const torch::Tensor& head_values, const torch::Tensor& hot_keys,
                                        const torch::Tensor& hot_values, const torch::Tensor& key_codes,
                                        const torch::Tensor& key_low, const torch::Tensor& key_step,
                                        const torch::Tensor& value_codes, const torch::Tensor& value_low,
                                        const torch::Tensor& value_step, int64_t bits, int64_t group) {
  TORCH_CHECK(slots.scalar_type() == torch::kInt64 && slots.dim() == 3, "slots must be int64 [b, h, k]");
  const Coded coded(key_codes, key_low, key_step, value_codes, value_low, value_step, bits, group);
  const Plain hk(head_keys), hv(head_values), wk(hot_keys), wv(hot_values);
  const auto idx = slots.contiguous();
  const int64_t B = idx.size(0), H = idx.size(1), K = idx.size(2), D = coded.D, sinks = hk.n;
  TORCH_CHECK(head_keys.size(3) == D && hot_keys.size(3) == D, "rows and codes disagree in head_dim");
  auto keys = torch::empty({B, H, K, D}, torch::kFloat32);
  auto values = torch::empty({B, H, K, D}, torch::kFloat32);
  const int64_t* ip = idx.data_ptr<int64_t>();
  float *kp = keys.data_ptr<float>(), *vp = values.data_ptr<float>();
  at::parallel_for(0, B * H * K, 64, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / (H * K), h = item / K % H, slot = ip[item];
      float *kout = kp + item * D, *vout = vp + item * D;
      if (slot < sinks) {
        hk.copy(b, h, slot, kout, D);
        hv.copy(b, h, slot, vout, D);
      } else if (slot < sinks + coded.n) {
        coded.row(b, h, slot - sinks, kout, vout);
      } else {
        wk.copy(b, h, slot - sinks - coded.n, kout, D);
        wv.copy(b, h, slot - sinks - coded.n, vout, D);
      }
    }
  });
  return {keys, values};
}
