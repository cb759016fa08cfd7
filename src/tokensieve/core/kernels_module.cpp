// The Python module of tokensieve's CPU kernels (core/kernels.py builds it): one binding per kernel.
#include <torch/extension.h>

// decode_attention.cpp
torch::Tensor attend(const torch::Tensor& query, const torch::Tensor& keys, const torch::Tensor& values,
                     double scale);
// dequantize_rows.cpp
std::vector<torch::Tensor> dequantize_rows(const torch::Tensor& rows, const torch::Tensor& key_codes,
                                           const torch::Tensor& key_low, const torch::Tensor& key_step,
                                           const torch::Tensor& value_codes, const torch::Tensor& value_low,
                                           const torch::Tensor& value_step, int64_t bits, int64_t group,
                                           bool want_keys, bool want_values);
std::vector<torch::Tensor> gather_layer(const torch::Tensor& slots, const torch::Tensor& head_keys,
                                        const torch::Tensor& head_values, const torch::Tensor& hot_keys,
                                        const torch::Tensor& hot_values, const torch::Tensor& key_codes,
                                        const torch::Tensor& key_low, const torch::Tensor& key_step,
                                        const torch::Tensor& value_codes, const torch::Tensor& value_low,
                                        const torch::Tensor& value_step, int64_t bits, int64_t group,
                                        bool want_keys, bool want_values);
// quest_step.cpp
torch::Tensor quest_step(const torch::Tensor& query, const torch::Tensor& low, const torch::Tensor& high,
                         const torch::Tensor& summary, int64_t page, int64_t origin, int64_t keep, int64_t sinks,
                         int64_t window, const torch::Tensor& head_keys, const torch::Tensor& head_values,
                         const torch::Tensor& hot_keys, const torch::Tensor& hot_values,
                         const std::vector<torch::Tensor>& coded, int64_t bits, int64_t group, double scale,
                         int64_t candidates);
std::vector<torch::Tensor> quest_steps(const py::list& steps);
std::vector<torch::Tensor> code_page_bounds(const torch::Tensor& summary, const torch::Tensor& key_low,
                                            const torch::Tensor& key_step, int64_t bits, int64_t page,
                                            int64_t group);
// int8_linear.cpp
torch::Tensor int8_linear(const torch::Tensor& rows, const torch::Tensor& codes, const torch::Tensor& scales);

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("attend", &attend, "one decode query per head over a float32 KV cache (GQA)");
  m.def("dequantize_rows", &dequantize_rows, "selected coded rows as float32 keys and values");
  m.def("gather_layer", &gather_layer, "a quantized layer's selected rows (sinks, codes, newest) as float32");
  m.def("int8_linear", &int8_linear, "1 to 16 float32 rows times int8 codes with per-output-channel scales");
  m.def("code_page_bounds", &code_page_bounds, "Quest's code pages as float32 key minima and maxima (bit-identical)");
  m.def("quest_step", &quest_step, "Quest's decode step over one layer: pages ranked, slots chosen, read, attended");
  m.def("quest_steps", &quest_steps, "many sequences' Quest steps (quest_step's arguments each) in one call");
}
