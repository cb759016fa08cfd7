// Quest's decode step over one layer in one call (sparse/quest.py; opt-in with the decode kernel): rank the complete
// pages by their bound on q.k, choose the slots the step attends, read them (sinks, codes, newest rows) and attend
// exactly. The torch path takes about twenty small operations per sequence and layer for the same; the server's
// packed step pays them 240 times a step at 8 x 4k on SmolLM2 (docs/KV-STORE.md).
//
// What differs from the torch path, by float rounding only: the bounds' summation order, the softmax's, and which
// slots of a page the budget cuts through are taken (the torch path's top-k leaves such ties arbitrary; here the
// earlier slots, and of equal bounds the earlier page).
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <utility>
#include <vector>

#include "decode_attention.h"
#include "quant_rows.h"
#include "simd.h"

namespace {

using tokensieve::Coded;
using tokensieve::Plain;

constexpr int64_t kMaxGroup = 16;  // query heads per KV head (decode_attention.h)

// Page p's bound for the group's R queries: the largest over them of sum_d max(q_d * low_d, q_d * high_d).
float page_bound(const float* q, int64_t R, int64_t D, const float* low, const float* high) {
  float best = -std::numeric_limits<float>::infinity();
  const __m256 zero = _mm256_setzero_ps();
  for (int64_t r = 0; r < R; ++r) {
    __m256 acc = _mm256_setzero_ps();
    for (int64_t d = 0; d < D; d += 8) {
      const __m256 qv = _mm256_loadu_ps(q + r * D + d);
      acc = _mm256_fmadd_ps(_mm256_max_ps(qv, zero), _mm256_loadu_ps(high + d), acc);
      acc = _mm256_fmadd_ps(_mm256_min_ps(qv, zero), _mm256_loadu_ps(low + d), acc);
    }
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, acc);
    float sum = 0.f;
    for (float x : lanes) sum += x;
    best = std::max(best, sum);
  }
  return std::isnan(best) ? -std::numeric_limits<float>::infinity() : best;
}

struct Layer {  // one layer's rows in token order: sinks (head), codes, newest full-precision rows (hot)
  Plain head_keys, head_values, hot_keys, hot_values;
  const Coded* coded;
  int64_t D;

  void row(int64_t g, int64_t slot, float* k, float* v) const {
    key(g, slot, k);
    value(g, slot, v);
  }

  void key(int64_t g, int64_t slot, float* k) const {
    const int64_t sinks = head_keys.n, codes = coded ? coded->n : 0;
    if (slot < sinks) head_keys.copy(0, g, slot, k, D);
    else if (slot < sinks + codes) coded->key(0, g, slot - sinks, k);
    else hot_keys.copy(0, g, slot - sinks - codes, k, D);
  }

  void value(int64_t g, int64_t slot, float* v) const {
    const int64_t sinks = head_keys.n, codes = coded ? coded->n : 0;
    if (slot < sinks) head_values.copy(0, g, slot, v, D);
    else if (slot < sinks + codes) coded->value(0, g, slot - sinks, v);
    else hot_values.copy(0, g, slot - sinks - codes, v, D);
  }
};

// The slots KV head g attends among n: the protected ones (the first `sinks` and the slots before the first page,
// the last `window`, the rest of the unfinished page), then whole pages (page p: slots from origin + p * page) by
// descending bound, each page's other slots in order, until `keep` are chosen. `*guarded`: how many of them,
// first, are protected.
std::vector<int64_t> choose(const std::vector<float>& bounds, int64_t page, int64_t origin, int64_t n, int64_t keep,
                            int64_t sinks, int64_t window, int64_t* guarded) {
  const int64_t pages = static_cast<int64_t>(bounds.size()), first = std::min(std::max(sinks, origin), n);
  const int64_t last = std::max(first, std::min(n - window, origin + pages * page));  // [last, n) is protected
  std::vector<int64_t> slots;
  slots.reserve(keep);
  const int64_t recent = std::max(last, n - window);  // the window, then the unfinished page
  for (int64_t t = 0; t < first && static_cast<int64_t>(slots.size()) < keep; ++t) slots.push_back(t);
  for (int64_t t = recent; t < n && static_cast<int64_t>(slots.size()) < keep; ++t) slots.push_back(t);
  for (int64_t t = last; t < recent && static_cast<int64_t>(slots.size()) < keep; ++t) slots.push_back(t);
  *guarded = static_cast<int64_t>(slots.size());
  int64_t left = keep - static_cast<int64_t>(slots.size());
  if (left <= 0) return slots;
  std::vector<int64_t> order(pages);
  for (int64_t p = 0; p < pages; ++p) order[p] = p;
  const int64_t wanted = std::min(pages, left / page + 2 + (window + first) / page + 1);
  const auto better = [&](int64_t a, int64_t b) { return bounds[a] > bounds[b] || (bounds[a] == bounds[b] && a < b); };
  if (wanted < pages) std::nth_element(order.begin(), order.begin() + wanted - 1, order.end(), better);
  std::sort(order.begin(), order.begin() + wanted, better);  // the same order as a partial sort, sooner
  for (int64_t i = 0; i < wanted && left > 0; ++i)
    for (int64_t t = origin + order[i] * page; t < origin + (order[i] + 1) * page && left > 0; ++t)
      if (t >= first && t < last) slots.push_back(t), --left;
  return slots;
}

float sum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}

// sum_d a[d] * b[d] for D a multiple of 32, in four independent chains (one chain waits on each fma's latency).
float dot(const float* a, const float* b, int64_t D) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  for (int64_t d = 0; d < D; d += 32)
    for (int j = 0; j < 4; ++j)
      acc[j] = _mm256_fmadd_ps(_mm256_loadu_ps(a + d + 8 * j), _mm256_loadu_ps(b + d + 8 * j), acc[j]);
  return sum8(_mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3])));
}

// Lane j: the sum of v[j]'s eight lanes.
__m256 sums8(const __m256 v[8]) {
  const __m256 a = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
  const __m256 b = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
}

// Each query row's q.k (unscaled, as sparse/quest_vote.py ranks them) for the K candidate slots -> logits [R, padded].
// A coded key is not dequantized for it: q.(c * step + min) = (q * step).c + q.min, with q * step and q.min made once
// per key group the candidates touch. Equal to the dequantized keys' products up to float rounding. Candidates go
// eight at a time where they share a key group (whole pages do), so each query row's eight sums share one reduction.
void candidate_logits(const Layer& layer, int64_t g, const float* q, int64_t R, const std::vector<int64_t>& slots,
                      int64_t padded, std::vector<float>& logits) {
  const int64_t D = layer.D, K = static_cast<int64_t>(slots.size()), sinks = layer.head_keys.n;
  const Coded* coded = layer.coded;
  const int64_t codes = coded ? coded->n : 0, groups = coded ? (codes + coded->group - 1) / coded->group : 0;
  thread_local std::vector<float> scaled, offset, rows;
  thread_local std::vector<uint8_t> made;
  scaled.resize(groups * R * D), offset.resize(groups * R), rows.resize(8 * D), made.assign(groups, 0);
  logits.resize(R * padded);
  const auto group_of = [&](int64_t slot) {  // the slot's key group, or -1 for a full-precision row
    return slot >= sinks && slot < sinks + codes ? (slot - sinks) / coded->group : int64_t{-1};
  };
  const auto make = [&](int64_t at) {  // q * step and q.min for key group `at`
    if (made[at]) return;
    const at::Half* low = coded->kl.data + g * coded->kl.s1 + at * coded->kl.s2;
    const at::Half* step = coded->ks.data + g * coded->ks.s1 + at * coded->ks.s2;
    for (int64_t r = 0; r < R; ++r) {
      __m256 acc = _mm256_setzero_ps();
      for (int64_t d = 0; d < D; d += 8) {
        const __m256 qv = _mm256_loadu_ps(q + r * D + d);
        _mm256_storeu_ps(scaled.data() + (at * R + r) * D + d, _mm256_mul_ps(qv, tokensieve::halves8(step + d)));
        acc = _mm256_fmadd_ps(qv, tokensieve::halves8(low + d), acc);
      }
      offset[at * R + r] = sum8(acc);
    }
    made[at] = 1;
  };
  const auto code_row = [&](int64_t slot) {
    return coded->kc.codes + g * coded->kc.s1 + (slot - sinks) * coded->kc.s2;
  };
  int64_t k = 0;
  while (k < K) {
    const int64_t at = group_of(slots[k]);
    bool block = at >= 0 && k + 8 <= K;
    const int64_t size = coded ? coded->group : 0, begins = sinks + at * size;  // the key group's slots
    const int64_t ends = std::min(begins + size, sinks + codes);
    for (int64_t j = 1; block && j < 8; ++j) block = slots[k + j] >= begins && slots[k + j] < ends;
    if (block) {
      make(at);
      for (int64_t j = 0; j < 8; ++j)
        tokensieve::codes_row(code_row(slots[k + j]), D, static_cast<int>(coded->bits), rows.data() + j * D);
      for (int64_t r = 0; r < R; ++r) {
        const float* weights = scaled.data() + (at * R + r) * D;
        __m256 acc[8];
        for (auto& a : acc) a = _mm256_setzero_ps();
        for (int64_t d = 0; d < D; d += 8) {
          const __m256 w = _mm256_loadu_ps(weights + d);
          for (int64_t j = 0; j < 8; ++j) acc[j] = _mm256_fmadd_ps(w, _mm256_loadu_ps(rows.data() + j * D + d), acc[j]);
        }
        _mm256_storeu_ps(logits.data() + r * padded + k,
                         _mm256_add_ps(sums8(acc), _mm256_set1_ps(offset[at * R + r])));
      }
      k += 8;
      continue;
    }
    const float* weights = q;  // one candidate alone: weights . row (+ shift)
    const float* shift = nullptr;
    if (at >= 0) {
      make(at);
      tokensieve::codes_row(code_row(slots[k]), D, static_cast<int>(coded->bits), rows.data());
      weights = scaled.data() + at * R * D, shift = offset.data() + at * R;
    } else {
      layer.key(g, slots[k], rows.data());
    }
    for (int64_t r = 0; r < R; ++r)
      logits[r * padded + k] = dot(weights + r * D, rows.data(), D) + (shift ? shift[r] : 0.f);
    ++k;
  }
}

// TokenSelect's soft vote (core/select.py's `vote`) from the candidates' logits [R, padded] (K real): each query
// row's softmax, summed over the rows -> votes [K] (a NaN vote as -inf). Equal to torch's up to float rounding (the
// sums' order, simd.h's exp).
void soft_vote(int64_t R, int64_t K, std::vector<float>& logits, std::vector<float>& votes) {
  const int64_t padded = (K + 7) / 8 * 8;
  votes.assign(padded, 0.f);
  for (int64_t r = 0; r < R; ++r) {
    float* row = logits.data() + r * padded;
    const float sum = tokensieve::exponentiate(row, K).second;
    std::fill(row + K, row + padded, 0.f);  // the padding: no share
    const __m256 total = _mm256_set1_ps(sum);
    for (int64_t k = 0; k < padded; k += 8)
      _mm256_storeu_ps(votes.data() + k, _mm256_add_ps(_mm256_loadu_ps(votes.data() + k),
                                                       _mm256_div_ps(_mm256_loadu_ps(row + k), total)));
  }
  votes.resize(K);
  for (float& v : votes) v = std::isnan(v) ? -std::numeric_limits<float>::infinity() : v;
}

// Of K candidates (the first `guarded` protected), the positions of `keep`: the protected ones, then the best by
// vote (a NaN vote last; of equal votes the earlier candidate), in no particular order.
std::vector<int64_t> elect(const std::vector<float>& votes, int64_t guarded, int64_t keep) {
  const int64_t K = static_cast<int64_t>(votes.size()), first = std::min(guarded, keep);
  const int64_t wanted = std::min(K, keep);
  std::vector<int64_t> order(wanted);
  for (int64_t k = 0; k < first; ++k) order[k] = k;
  if (wanted == first) return order;
  // The rest ranked as one 64-bit number each, the vote's bits made orderable above the complement of the position:
  // a larger number is a larger vote, or an equal vote earlier.
  thread_local std::vector<uint64_t> ranked;
  ranked.resize(K - first);
  for (int64_t k = first; k < K; ++k) {
    uint32_t bits;
    std::memcpy(&bits, &votes[k], 4);
    bits = bits & 0x80000000u ? ~bits : bits | 0x80000000u;
    ranked[k - first] = static_cast<uint64_t>(bits) << 32 | (0xFFFFFFFFu - static_cast<uint32_t>(k));
  }
  const int64_t taken = wanted - first;
  if (taken < static_cast<int64_t>(ranked.size()))
    std::nth_element(ranked.begin(), ranked.begin() + taken - 1, ranked.end(), std::greater<uint64_t>());
  for (int64_t i = 0; i < taken; ++i) order[first + i] = 0xFFFFFFFFu - static_cast<uint32_t>(ranked[i]);
  return order;
}

// Page p's key minimum and maximum per channel into low and high, from its minimum and maximum codes (`summary`:
// packed minimum codes, then packed maximum codes) and its key group's float16 minimum and step, computed as the
// store dequantizes (code * step, then + min), so equal to the dequantized keys' own extremes.
void coded_bounds(const Coded& coded, const uint8_t* summary, int64_t g, int64_t group_index, float* low,
                  float* high) {
  const int64_t D = coded.D, half = D * coded.bits / 8;
  const at::Half* kmin = coded.kl.data + g * coded.kl.s1 + group_index * coded.kl.s2;
  const at::Half* kstep = coded.ks.data + g * coded.ks.s1 + group_index * coded.ks.s2;
  for (int64_t d = 0; d < D; d += 8) {
    const __m256 step = tokensieve::halves8(kstep + d), least = tokensieve::halves8(kmin + d);
    const int bits = static_cast<int>(coded.bits);
    _mm256_storeu_ps(low + d, _mm256_add_ps(_mm256_mul_ps(tokensieve::codes8(summary, d, bits), step), least));
    _mm256_storeu_ps(high + d,
                     _mm256_add_ps(_mm256_mul_ps(tokensieve::codes8(summary + half, d, bits), step), least));
  }
}

// One sequence's step over one layer, checked and ready to run head by head (`quest_step`, `quest_steps`).
struct Step {
  torch::Tensor q, lo, hi, sm, out;  // held: the pointers below read them
  std::unique_ptr<Coded> codes;
  Layer layer;
  int64_t D, G, R, n, pages, kept, summarised, page, origin, keep, sinks, window, wide;
  float scale;

  // KV head g's share: pages bounded, slots chosen (and voted), read and attended into out.
  void head(int64_t g) const {
    const float* qg = q.data_ptr<float>() + g * R * D;
    const float *lp = kept ? lo.data_ptr<float>() : nullptr, *hp = kept ? hi.data_ptr<float>() : nullptr;
    const uint8_t* sp = summarised ? sm.data_ptr<uint8_t>() : nullptr;
    std::vector<float> bounds(pages), least(D), most(D), key(D), value(D);
    for (int64_t p = 0; p < pages; ++p) {
      if (p < summarised) {
        coded_bounds(*codes, sp + (g * summarised + p) * sm.size(3), g, p * page / codes->group, least.data(),
                     most.data());
        bounds[p] = page_bound(qg, R, D, least.data(), most.data());
      } else if (p < summarised + kept) {
        const int64_t at = g * kept + p - summarised;
        bounds[p] = page_bound(qg, R, D, lp + at * D, hp + at * D);
      } else {  // a page still at full precision: bounded from its rows
        std::fill(least.begin(), least.end(), std::numeric_limits<float>::infinity());
        std::fill(most.begin(), most.end(), -std::numeric_limits<float>::infinity());
        for (int64_t t = origin + p * page; t < origin + (p + 1) * page; ++t) {
          layer.row(g, t, key.data(), value.data());
          for (int64_t d = 0; d < D; ++d) {
            least[d] = std::min(least[d], key[d]);
            most[d] = std::max(most[d], key[d]);
          }
        }
        bounds[p] = page_bound(qg, R, D, least.data(), most.data());
      }
    }
    int64_t guarded = 0;
    const std::vector<int64_t> slots = choose(bounds, page, origin, n, wide, sinks, window, &guarded);
    int64_t K = static_cast<int64_t>(slots.size());
    thread_local std::vector<float> keys, values, logits, votes;  // reused: a step calls this 720 times at 8 x 4k
    if (static_cast<int64_t>(keys.size()) < K * D) keys.resize(K * D), values.resize(K * D);
    if (wide == keep) {
      for (int64_t k = 0; k < K; ++k) layer.row(g, slots[k], keys.data() + k * D, values.data() + k * D);
    } else {
      const int64_t padded = (K + 7) / 8 * 8;
      candidate_logits(layer, g, qg, R, slots, padded, logits);
      soft_vote(R, K, logits, votes);
      const std::vector<int64_t> chosen = elect(votes, guarded, keep);
      K = static_cast<int64_t>(chosen.size());
      for (int64_t k = 0; k < K; ++k) layer.row(g, slots[chosen[k]], keys.data() + k * D, values.data() + k * D);
    }
    tokensieve::attend_rows(qg, R, keys.data(), values.data(), K, D, scale, out.data_ptr<float>() + g * R * D);
  }
};

// query [1, H, 1, D]; a layer of n slots: head_* [1, G, sinks, D], then `coded` (QuantizedRows' six tensors, or
// none), then hot_* [1, G, rows, D]. Its complete pages, of `page` slots from slot `origin`, are bounded from, in
// order: `summary` [1, G, pages, 2 * packed D] (code pages, core/code_pages.py; may be empty), `low` and `high`
// [1, G, pages, D] (float32 bounds; may be empty), and the rows themselves for the pages after those. Each KV head
// attends `keep` slots (the protected `sinks` and `window` first) -> [1, 1, H, D]. With `candidates` > 1 (QuestVote,
// sparse/quest_vote.py) the pages give `candidates` times `keep` slots, ranked by TokenSelect's soft vote over
// their keys (the codes' products, not dequantized); the protected ones and the vote's best are read and attended.
Step prepare(const torch::Tensor& query, const torch::Tensor& low, const torch::Tensor& high,
             const torch::Tensor& summary, int64_t page, int64_t origin, int64_t keep, int64_t sinks, int64_t window,
             const torch::Tensor& head_keys, const torch::Tensor& head_values, const torch::Tensor& hot_keys,
             const torch::Tensor& hot_values, const std::vector<torch::Tensor>& coded, int64_t bits, int64_t group,
             double scale, int64_t candidates) {
  TORCH_CHECK(query.scalar_type() == torch::kFloat32 && query.dim() == 4 && query.size(0) == 1 &&
              query.size(2) == 1, "query must be float32 [1, heads, 1, head_dim]");
  TORCH_CHECK(coded.empty() || coded.size() == 6, "coded rows come as QuantizedRows' six tensors");
  Step step{query.contiguous(), low.contiguous(), high.contiguous(), summary.contiguous()};
  const auto &lo = step.lo, &hi = step.hi, &sm = step.sm;
  const int64_t H = step.q.size(1), D = step.q.size(3), G = hot_keys.size(1);
  TORCH_CHECK(D % 32 == 0 && D <= 256 && H % G == 0 && H / G <= kMaxGroup, "unsupported heads or head_dim");
  const int64_t kept = lo.numel() ? lo.size(2) : 0, summarised = sm.numel() ? sm.size(2) : 0;
  TORCH_CHECK(kept == 0 || (lo.scalar_type() == torch::kFloat32 && lo.sizes() == hi.sizes() && lo.dim() == 4 &&
              lo.size(1) == G && lo.size(3) == D), "page bounds must be float32 [1, kv_heads, pages, head_dim]");
  if (!coded.empty())
    step.codes = std::make_unique<Coded>(coded[0], coded[1], coded[2], coded[3], coded[4], coded[5], bits, group);
  const Coded* codes = step.codes.get();
  TORCH_CHECK(summarised == 0 || (codes && sm.scalar_type() == torch::kUInt8 && sm.dim() == 4 && sm.size(1) == G &&
              sm.size(3) == 2 * D * bits / 8 && group % page == 0 && summarised * page <= codes->n),
              "code pages must be uint8 [1, kv_heads, pages, 2 * packed head_dim] over the coded rows' groups");
  step.layer = Layer{Plain(head_keys), Plain(head_values), Plain(hot_keys), Plain(hot_values), codes, D};
  const int64_t n = step.layer.head_keys.n + (codes ? codes->n : 0) + step.layer.hot_keys.n;
  TORCH_CHECK(page > 0 && origin >= 0 && (summarised == 0 || origin == step.layer.head_keys.n),
              "code pages start at the first coded row");
  const int64_t pages = n > origin ? (n - origin) / page : 0;
  TORCH_CHECK(kept + summarised <= pages, "page bounds must cover at most the complete pages of the layer");
  TORCH_CHECK(keep > 0 && keep <= n, "keep must be within the layer's slots");
  TORCH_CHECK(candidates >= 1, "candidates must be at least 1");
  step.D = D, step.G = G, step.R = H / G, step.n = n, step.pages = pages, step.kept = kept;
  step.summarised = summarised, step.page = page, step.origin = origin, step.keep = keep, step.sinks = sinks;
  step.window = window, step.wide = std::min(n, keep * candidates), step.scale = static_cast<float>(scale);
  step.out = torch::empty({1, 1, H, D}, step.q.options());
  return step;
}

Step prepare(const py::handle& arguments) {
  const auto a = arguments.cast<py::tuple>();
  TORCH_CHECK(a.size() == 18, "a step comes as quest_step's eighteen arguments");
  return prepare(a[0].cast<torch::Tensor>(), a[1].cast<torch::Tensor>(), a[2].cast<torch::Tensor>(),
                 a[3].cast<torch::Tensor>(), a[4].cast<int64_t>(), a[5].cast<int64_t>(), a[6].cast<int64_t>(),
                 a[7].cast<int64_t>(), a[8].cast<int64_t>(), a[9].cast<torch::Tensor>(), a[10].cast<torch::Tensor>(),
                 a[11].cast<torch::Tensor>(), a[12].cast<torch::Tensor>(),
                 a[13].cast<std::vector<torch::Tensor>>(), a[14].cast<int64_t>(), a[15].cast<int64_t>(),
                 a[16].cast<double>(), a[17].cast<int64_t>());
}

}  // namespace

torch::Tensor quest_step(const torch::Tensor& query, const torch::Tensor& low, const torch::Tensor& high,
                         const torch::Tensor& summary, int64_t page, int64_t origin, int64_t keep, int64_t sinks,
                         int64_t window, const torch::Tensor& head_keys, const torch::Tensor& head_values,
                         const torch::Tensor& hot_keys, const torch::Tensor& hot_values,
                         const std::vector<torch::Tensor>& coded, int64_t bits, int64_t group, double scale,
                         int64_t candidates) {
  const Step step = prepare(query, low, high, summary, page, origin, keep, sinks, window, head_keys, head_values,
                            hot_keys, hot_values, coded, bits, group, scale, candidates);
  at::parallel_for(0, step.G, 1, [&](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) step.head(g);
  });
  return step.out;
}

// Many sequences' steps over one layer each (the server's packed step), every step given as quest_step's arguments,
// in one call: their KV heads are shared among the threads together (at 8 x 4k on SmolLM2, 24 heads where one step
// has 3), so no thread waits for a step's last head. Each output equals quest_step's for the same arguments.
std::vector<torch::Tensor> quest_steps(const py::list& steps) {
  std::vector<Step> prepared;
  std::vector<std::pair<int64_t, int64_t>> heads;  // (step, KV head), every head of every step
  for (const auto& arguments : steps) {
    prepared.push_back(prepare(arguments));
    for (int64_t g = 0; g < prepared.back().G; ++g)
      heads.emplace_back(static_cast<int64_t>(prepared.size()) - 1, g);
  }
  at::parallel_for(0, static_cast<int64_t>(heads.size()), 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) prepared[heads[i].first].head(heads[i].second);
  });
  std::vector<torch::Tensor> outputs;
  for (const Step& step : prepared) outputs.push_back(step.out);
  return outputs;
}

// Every code page's key minimum and maximum per channel: summary [b, G, pages, 2 * packed D] (core/code_pages.py),
// key_low and key_step [b, G, groups, D] float16 -> low, high [b, G, pages, D] float32, element by element as
// CodePages.bounds computes them in torch (code * step, then + min), so bit-identical to it.
std::vector<torch::Tensor> code_page_bounds(const torch::Tensor& summary, const torch::Tensor& key_low,
                                            const torch::Tensor& key_step, int64_t bits, int64_t page,
                                            int64_t group) {
  const auto sm = summary.contiguous();
  TORCH_CHECK(bits == 4 || bits == 8, "bits must be 4 or 8");
  TORCH_CHECK(sm.scalar_type() == torch::kUInt8 && sm.dim() == 4 && page > 0 && group % page == 0,
              "code pages must be uint8 [batch, kv_heads, pages, 2 * packed head_dim]");
  const tokensieve::Scales low_scales = tokensieve::scales_of(key_low), steps = tokensieve::scales_of(key_step);
  const int64_t B = sm.size(0), G = sm.size(1), P = sm.size(2), D = key_low.size(3), width = sm.size(3);
  TORCH_CHECK(width == 2 * D * bits / 8 && D % 8 == 0 && key_low.size(0) == B && key_low.size(1) == G &&
              key_low.size(2) * group >= P * page, "code pages and key scales disagree");
  auto low = torch::empty({B, G, P, D}, sm.options().dtype(torch::kFloat32)), high = torch::empty_like(low);
  const uint8_t* sp = sm.data_ptr<uint8_t>();
  float *lp = low.data_ptr<float>(), *hp = high.data_ptr<float>();
  const int bits_ = static_cast<int>(bits);
  at::parallel_for(0, B * G, 1, [&](int64_t begin, int64_t end) {
    for (int64_t bg = begin; bg < end; ++bg) {
      const int64_t b = bg / G, g = bg % G;
      for (int64_t p = 0; p < P; ++p) {
        const uint8_t* row = sp + (bg * P + p) * width;
        const int64_t at = (p * page / group) * low_scales.s2;
        const at::Half* kmin = low_scales.data + b * low_scales.s0 + g * low_scales.s1 + at;
        const at::Half* kstep = steps.data + b * steps.s0 + g * steps.s1 + (p * page / group) * steps.s2;
        float *lo = lp + (bg * P + p) * D, *hi = hp + (bg * P + p) * D;
        for (int64_t d = 0; d < D; d += 8) {
          const __m256 step = tokensieve::halves8(kstep + d), least = tokensieve::halves8(kmin + d);
          _mm256_storeu_ps(lo + d, _mm256_add_ps(_mm256_mul_ps(tokensieve::codes8(row, d, bits_), step), least));
          _mm256_storeu_ps(hi + d, _mm256_add_ps(
              _mm256_mul_ps(tokensieve::codes8(row + width / 2, d, bits_), step), least));
        }
      }
    }
  });
  return {low, high};
}
