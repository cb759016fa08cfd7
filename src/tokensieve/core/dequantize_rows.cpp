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
