// The coded rows a selector picked, dequantized in one pass (core/quant.py's QuantizedRows.dequantize_rows): for
// each (sequence, head, selected row) the row's codes are unpacked and scaled, keys by their channel's (min, step)
// in the row's token group, values by their own row's per-channel-group (min, step). Each element is computed as
// torch computes it there, code * step + min in float32 with two roundings (built with -ffp-contract=off), so the
// results are bit-identical; what changes is one loop instead of about twenty small tensor operations.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include "quant_rows.h"

using tokensieve::Coded;
using tokensieve::Plain;

namespace {

// [b, h, k, D] float32 where wanted, else an empty tensor (a reader of keys alone skips the values, and back).
torch::Tensor output(bool wanted, int64_t B, int64_t H, int64_t K, int64_t D) {
  return wanted ? torch::empty({B, H, K, D}, torch::kFloat32) : torch::empty({0}, torch::kFloat32);
}

}  // namespace

// rows [b, h, k] (indices into the coded rows) -> keys, values [b, h, k, dim] float32 (each empty if not wanted).
std::vector<torch::Tensor> dequantize_rows(const torch::Tensor& rows, const torch::Tensor& key_codes,
                                           const torch::Tensor& key_low, const torch::Tensor& key_step,
                                           const torch::Tensor& value_codes, const torch::Tensor& value_low,
                                           const torch::Tensor& value_step, int64_t bits, int64_t group,
                                           bool want_keys, bool want_values) {
  TORCH_CHECK(rows.scalar_type() == torch::kInt64 && rows.dim() == 3, "rows must be int64 [b, h, k]");
  const Coded coded(key_codes, key_low, key_step, value_codes, value_low, value_step, bits, group);
  const auto idx = rows.contiguous();
  const int64_t B = idx.size(0), H = idx.size(1), K = idx.size(2), D = coded.D;
  auto keys = output(want_keys, B, H, K, D), values = output(want_values, B, H, K, D);
  const int64_t* ip = idx.data_ptr<int64_t>();
  float *kp = want_keys ? keys.data_ptr<float>() : nullptr, *vp = want_values ? values.data_ptr<float>() : nullptr;
  at::parallel_for(0, B * H * K, 64, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      if (kp) coded.key(item / (H * K), item / K % H, ip[item], kp + item * D);
      if (vp) coded.value(item / (H * K), item / K % H, ip[item], vp + item * D);
    }
  });
  return {keys, values};
}

// A quantized layer's rows at slots [b, h, k], in token order: slots below `sinks` from the sink rows, then the
// coded rows, then the newest full-precision rows -> keys, values [b, h, k, dim] float32 (each empty if not wanted).
std::vector<torch::Tensor> gather_layer(const torch::Tensor& slots, const torch::Tensor& head_keys,
                                        const torch::Tensor& head_values, const torch::Tensor& hot_keys,
                                        const torch::Tensor& hot_values, const torch::Tensor& key_codes,
                                        const torch::Tensor& key_low, const torch::Tensor& key_step,
                                        const torch::Tensor& value_codes, const torch::Tensor& value_low,
                                        const torch::Tensor& value_step, int64_t bits, int64_t group,
                                        bool want_keys, bool want_values) {
  TORCH_CHECK(slots.scalar_type() == torch::kInt64 && slots.dim() == 3, "slots must be int64 [b, h, k]");
  const Coded coded(key_codes, key_low, key_step, value_codes, value_low, value_step, bits, group);
  const Plain hk(head_keys), hv(head_values), wk(hot_keys), wv(hot_values);
  const auto idx = slots.contiguous();
  const int64_t B = idx.size(0), H = idx.size(1), K = idx.size(2), D = coded.D, sinks = hk.n;
  TORCH_CHECK(head_keys.size(3) == D && hot_keys.size(3) == D, "rows and codes disagree in head_dim");
  auto keys = output(want_keys, B, H, K, D), values = output(want_values, B, H, K, D);
  const int64_t* ip = idx.data_ptr<int64_t>();
  float *kp = want_keys ? keys.data_ptr<float>() : nullptr, *vp = want_values ? values.data_ptr<float>() : nullptr;
  at::parallel_for(0, B * H * K, 64, [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      const int64_t b = item / (H * K), h = item / K % H, slot = ip[item];
      if (slot < sinks) {
        if (kp) hk.copy(b, h, slot, kp + item * D, D);
        if (vp) hv.copy(b, h, slot, vp + item * D, D);
      } else if (slot < sinks + coded.n) {
        if (kp) coded.key(b, h, slot - sinks, kp + item * D);
        if (vp) coded.value(b, h, slot - sinks, vp + item * D);
      } else {
        if (kp) wk.copy(b, h, slot - sinks - coded.n, kp + item * D, D);
        if (vp) wv.copy(b, h, slot - sinks - coded.n, vp + item * D, D);
      }
    }
  });
  return {keys, values};
}
