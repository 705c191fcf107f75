#include "decode.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>

namespace atom {

using executorch::extension::make_tensor_ptr;
using executorch::runtime::EValue;

std::vector<float> Stepper::embed(const std::vector<int64_t>& tokens, int rows, int seq) {
  auto t = make_tensor_ptr({rows, seq}, std::vector<int64_t>(tokens));
  FloatOut out = decoder_.run("token_embedding", {EValue(*t)});
  if (out.data.size() != size_t(rows) * seq * dim_)
    throw EtError("module decoder method token_embedding: unexpected output size");
  return std::move(out.data);
}

std::vector<int64_t> reorder_positions(const std::vector<int64_t>& cache_index, int64_t start, int64_t shared_until) {
  bool identity = true;
  for (size_t r = 0; r < cache_index.size(); ++r) identity = identity && cache_index[r] == int64_t(r);
  if (identity || shared_until >= start) return {start};
  std::vector<int64_t> positions(size_t(start - shared_until));
  std::iota(positions.begin(), positions.end(), shared_until);
  return positions;
}

FloatOut Stepper::step(const std::vector<float>& embeds, int rows, int seq, const std::vector<int64_t>& input_pos,
                       const std::vector<int64_t>& cache_index, int64_t shared_until) {
  auto e = make_tensor_ptr({rows, seq, dim_}, std::vector<float>(embeds));
  auto p = make_tensor_ptr({seq}, std::vector<int64_t>(input_pos));
  auto c = make_tensor_ptr({rows}, std::vector<int64_t>(cache_index));
  std::vector<int64_t> moved = reorder_positions(cache_index, input_pos.at(0), shared_until);
  const int moved_count = int(moved.size());  // read before the vector is moved into the tensor
  auto r = make_tensor_ptr({moved_count}, std::move(moved));
  return decoder_.run("text_decoder", {EValue(*e), EValue(*p), EValue(*c), EValue(*r)});
}

Prefilled prefill(Stepper& s, int64_t bos_id, const std::vector<int64_t>& prompt, const std::vector<float>& prefix) {
  std::vector<float> embeds = s.embed({bos_id}, 1, 1);
  embeds.insert(embeds.end(), prefix.begin(), prefix.end());
  if (!prompt.empty()) {
    std::vector<float> p = s.embed(prompt, 1, int(prompt.size()));
    embeds.insert(embeds.end(), p.begin(), p.end());
  }
  int length = int(embeds.size() / size_t(s.dim()));
  std::vector<int64_t> pos(length);
  std::iota(pos.begin(), pos.end(), 0);
  return {s.step(embeds, 1, length, pos, {0}), length};
}

static int64_t argmax_row(const float* row, int n) {
  int64_t best = 0;
  for (int i = 1; i < n; ++i)
    if (row[i] > row[best]) best = i;  // first maximum, as np.argmax
  return best;
}

std::vector<int64_t> greedy(Stepper& s, FloatOut logits, int start_pos, int steps) {
  std::vector<int64_t> tokens;
  int pos = start_pos;
  for (int i = 0; i < steps; ++i) {
    int vocab = logits.shape.back();
    int64_t token = argmax_row(logits.data.data(), vocab);
    tokens.push_back(token);
    if (i + 1 < steps) {  // the last token is never fed back
      std::vector<float> e = s.embed({token}, 1, 1);
      logits = s.step(e, 1, 1, {pos}, {0});
      ++pos;
    }
  }
  return tokens;
}

// numpy's pairwise summation (contiguous reduction), so the log-sum-exp matches np.sum.
static double pairwise_sum(const double* a, size_t n) {
  if (n < 8) {
    double r = 0.0;  // numpy starts from -0.0 but adds the first element; same result for finite sums
    for (size_t i = 0; i < n; ++i) r += a[i];
    return r;
  }
  if (n <= 128) {
    double r[8];
    for (int k = 0; k < 8; ++k) r[k] = a[k];
    size_t i;
    for (i = 8; i < n - (n % 8); i += 8)
      for (int k = 0; k < 8; ++k) r[k] += a[i + k];
    double res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  size_t n2 = n / 2;
  n2 -= n2 % 8;
  return pairwise_sum(a, n2) + pairwise_sum(a + n2, n - n2);
}

static std::vector<double> log_softmax(const FloatOut& logits, int rows, int vocab) {
  std::vector<double> out(size_t(rows) * vocab);
  std::vector<double> ex(vocab);
  for (int r = 0; r < rows; ++r) {
    const float* x = logits.data.data() + size_t(r) * vocab;
    double mx = -std::numeric_limits<double>::infinity();
    for (int v = 0; v < vocab; ++v) mx = std::max(mx, double(x[v]));
    double* o = out.data() + size_t(r) * vocab;
    for (int v = 0; v < vocab; ++v) {
      o[v] = double(x[v]) - mx;
      ex[v] = std::exp(o[v]);
    }
    double lse = std::log(pairwise_sum(ex.data(), vocab));
    for (int v = 0; v < vocab; ++v) o[v] -= lse;
  }
  return out;
}

void beam_select(const std::vector<double>& logprobs, int rows, int vocab, const std::vector<double>& sums,
                 const std::vector<int64_t>& lengths, const std::vector<bool>& frozen, int64_t eos_id, int width,
                 std::vector<int64_t>& parents, std::vector<int64_t>& tokens) {
  const double ninf = -std::numeric_limits<double>::infinity();
  std::vector<double> scores(size_t(rows) * vocab);
  for (int r = 0; r < rows; ++r) {
    for (int v = 0; v < vocab; ++v) {
      size_t k = size_t(r) * vocab + v;
      scores[k] = frozen[r] ? ninf : (sums[r] + logprobs[k]) / double(lengths[r] + 1);
    }
    if (frozen[r]) scores[size_t(r) * vocab + eos_id] = sums[r] / double(lengths[r]);
  }
  std::vector<int64_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  // Stable descending: ties keep the lower flat index (lower row, then lower token id).
  size_t keep = std::min(size_t(width), order.size());
  std::partial_sort(order.begin(), order.begin() + keep, order.end(), [&](int64_t a, int64_t b) {
    double sa = -scores[a], sb = -scores[b];
    if (sa < sb) return true;
    if (sb < sa) return false;
    return a < b;
  });
  parents.resize(keep);
  tokens.resize(keep);
  for (size_t i = 0; i < keep; ++i) {
    parents[i] = order[i] / vocab;
    tokens[i] = order[i] % vocab;
  }
}

BeamResult beam_search(Stepper& s, FloatOut logits, int start_pos, int steps, int64_t eos_id, int width) {
  std::vector<double> sums{0.0};
  std::vector<int64_t> lengths{0};
  std::vector<bool> frozen{false};
  std::vector<std::vector<int64_t>> hyps{{}};
  int pos = start_pos;
  std::vector<int64_t> parents, chosen;
  for (int i = 0; i < steps; ++i) {
    int rows = logits.shape[0], vocab = logits.shape.back();
    std::vector<double> lp = log_softmax(logits, rows, vocab);
    beam_select(lp, rows, vocab, sums, lengths, frozen, eos_id, width, parents, chosen);
    size_t k = parents.size();
    std::vector<double> nsums(k);
    std::vector<int64_t> nlengths(k);
    std::vector<bool> nfrozen(k);
    std::vector<std::vector<int64_t>> nhyps(k);
    for (size_t j = 0; j < k; ++j) {
      int64_t p = parents[j];
      bool was = frozen[p];
      nsums[j] = sums[p] + (was ? 0.0 : lp[size_t(p) * vocab + chosen[j]]);
      nlengths[j] = lengths[p] + (was ? 0 : 1);
      nfrozen[j] = was || chosen[j] == eos_id;
      nhyps[j] = hyps[p];
      nhyps[j].push_back(chosen[j]);
    }
    sums.swap(nsums);
    lengths.swap(nlengths);
    frozen.swap(nfrozen);
    hyps.swap(nhyps);
    if (i + 1 < steps) {
      std::vector<float> e = s.embed(chosen, int(k), 1);
      logits = s.step(e, int(k), 1, {pos}, parents, i ? start_pos : 0);
      ++pos;
    }
  }
  size_t best = 0;
  double best_score = sums[0] / double(lengths[0]);
  for (size_t j = 1; j < sums.size(); ++j) {
    double f = sums[j] / double(lengths[j]);
    if (f > best_score) {
      best = j;
      best_score = f;
    }
  }
  return {hyps[best], best_score};
}

std::vector<int64_t> trim_after_eos(const std::vector<int64_t>& tokens, int64_t eos_id) {
  auto it = std::find(tokens.begin(), tokens.end(), eos_id);
  return std::vector<int64_t>(tokens.begin(), it);
}

int prompt_room(int max_context, int prefix_len, int steps) {
  int room = max_context - 1 - prefix_len - steps;
  if (room < 0)
    throw std::runtime_error(std::to_string(steps) + " steps + " + std::to_string(prefix_len) +
                             " prefix tokens do not fit the context of " + std::to_string(max_context));
  return room;
}

}  // namespace atom
