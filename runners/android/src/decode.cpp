#include "decode.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>
#include <string>

#include <executorch/runtime/kernel/thread_parallel_interface.h>

namespace atom {

using executorch::extension::make_tensor_ptr;
using executorch::runtime::EValue;

int attended_length(int64_t last_pos, int max_context) {
  const int64_t blocks = (last_pos + kAttendBlock) / kAttendBlock;  // ceil((last_pos + 1) / block)
  return int(std::min<int64_t>(max_context, blocks * kAttendBlock));
}

Stepper::Stepper(EtModule& decoder, int dim) : decoder_(decoder), dim_(dim) {
  // The program's own bounds, not the manifest's: embeds [max_batch, seq, dim], attend_pos [max_context]
  const std::vector<int64_t> embeds_bound = decoder_.input_sizes("text_decoder", 0);
  const std::vector<int64_t> attend_bound = decoder_.input_sizes("text_decoder", 4);
  if (embeds_bound.size() != 3 || attend_bound.size() != 1 || embeds_bound[2] != dim)
    throw EtError("module decoder method text_decoder: inputs are not embeds [B,S," + std::to_string(dim) +
                  "] ... attend_pos [T] (re-export with this kit)");
  const int max_batch = int(embeds_bound[0]);
  max_context_ = int(attend_bound[0]);
  std::vector<float> embeds = embed(std::vector<int64_t>(size_t(max_batch), 0), max_batch, 1);
  std::vector<int64_t> own_rows(static_cast<size_t>(max_batch));
  std::iota(own_rows.begin(), own_rows.end(), 0);
  step(embeds, max_batch, 1, {int64_t(max_context_ - 1)}, own_rows);
}

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
  const int attended_count = attended_length(input_pos.back(), max_context_);
  std::vector<int64_t> attended(static_cast<size_t>(attended_count));
  std::iota(attended.begin(), attended.end(), 0);
  auto a = make_tensor_ptr({attended_count}, std::move(attended));
  return decoder_.run("text_decoder", {EValue(*e), EValue(*p), EValue(*c), EValue(*r), EValue(*a)});
}

Prefilled prefill(Stepper& s, int64_t bos_id, const std::vector<int64_t>& prompt, const std::vector<float>& prefixes,
                  int rows) {
  const size_t dim = size_t(s.dim());
  std::vector<float> bos = bos_id >= 0 ? s.embed({bos_id}, 1, 1) : std::vector<float>{};
  std::vector<float> text = prompt.empty() ? std::vector<float>{} : s.embed(prompt, 1, int(prompt.size()));
  const size_t prefix_floats = prefixes.size() / size_t(rows);
  const size_t row_floats = bos.size() + prefix_floats + text.size();
  if (row_floats == 0) throw std::runtime_error("nothing to prefill: no BOS, no prefix and an empty prompt");
  std::vector<float> embeds;
  embeds.reserve(size_t(rows) * row_floats);
  for (int r = 0; r < rows; ++r) {
    embeds.insert(embeds.end(), bos.begin(), bos.end());
    embeds.insert(embeds.end(), prefixes.begin() + long(size_t(r) * prefix_floats),
                  prefixes.begin() + long(size_t(r + 1) * prefix_floats));
    embeds.insert(embeds.end(), text.begin(), text.end());
  }
  int length = int(row_floats / dim);
  std::vector<int64_t> pos(length), own_rows(rows);
  std::iota(pos.begin(), pos.end(), 0);
  std::iota(own_rows.begin(), own_rows.end(), 0);
  return {s.step(embeds, rows, length, pos, own_rows), length};
}

static int64_t argmax_row(const float* row, int n) {
  int64_t best = 0;
  for (int i = 1; i < n; ++i)
    if (row[i] > row[best]) best = i;  // first maximum, as np.argmax
  return best;
}

std::vector<std::vector<int64_t>> greedy_rows(Stepper& s, FloatOut logits, int start_pos, int steps) {
  const int rows = logits.shape[0];
  std::vector<int64_t> own_rows(rows), chosen(rows);
  std::iota(own_rows.begin(), own_rows.end(), 0);
  std::vector<std::vector<int64_t>> tokens(rows);
  int pos = start_pos;
  for (int i = 0; i < steps; ++i) {
    int vocab = logits.shape.back();
    for (int r = 0; r < rows; ++r) {
      chosen[r] = argmax_row(logits.data.data() + size_t(r) * vocab, vocab);
      tokens[r].push_back(chosen[r]);
    }
    if (i + 1 < steps) {  // the last token is never fed back
      std::vector<float> e = s.embed(chosen, rows, 1);
      logits = s.step(e, rows, 1, {pos}, own_rows);
      ++pos;
    }
  }
  return tokens;
}

std::vector<int64_t> greedy(Stepper& s, FloatOut logits, int start_pos, int steps) {
  return greedy_rows(s, std::move(logits), start_pos, steps).at(0);
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

// Rows of float64 log-softmax [rows * vocab]. The exponentials (4 x 128k a beam step) run
// on ExecuTorch's thread pool, which is idle between decoder calls. Each element's value is
// the same however the work is split, and the sum stays numpy's pairwise order.
static std::vector<double> log_softmax(const FloatOut& logits, int rows, int vocab) {
  std::vector<double> out(size_t(rows) * vocab);
  std::vector<double> ex(vocab);
  for (int r = 0; r < rows; ++r) {
    const float* x = logits.data.data() + size_t(r) * vocab;
    double mx = -std::numeric_limits<double>::infinity();
    for (int v = 0; v < vocab; ++v) mx = std::max(mx, double(x[v]));
    double* o = out.data() + size_t(r) * vocab;
    executorch::extension::parallel_for(0, vocab, 8192, [&](int64_t begin, int64_t end) {
      for (int64_t v = begin; v < end; ++v) {
        o[v] = double(x[v]) - mx;
        ex[size_t(v)] = std::exp(o[v]);
      }
    });
    double lse = std::log(pairwise_sum(ex.data(), vocab));
    for (int v = 0; v < vocab; ++v) o[v] -= lse;
  }
  return out;
}

void beam_select(const double* logprobs, int rows, int vocab, const std::vector<double>& sums,
                 const std::vector<int64_t>& lengths, const std::vector<bool>& frozen, int64_t eos_id, int width,
                 std::vector<int64_t>& parents, std::vector<int64_t>& tokens) {
  // One pass in ascending flat index, keeping the best `width` so far in descending score:
  // a candidate goes after every kept one with a score >= its own, so ties keep the lower
  // flat index (lower row, then lower token id): a stable descending sort, cut to width.
  const double ninf = -std::numeric_limits<double>::infinity();
  const size_t keep = std::min(size_t(width), size_t(rows) * size_t(vocab));
  std::vector<double> best_score;
  std::vector<int64_t> best_index;
  best_score.reserve(keep + 1);
  best_index.reserve(keep + 1);
  auto offer = [&](double score, int64_t index) {
    if (best_score.size() == keep && !(score > best_score.back())) return;
    size_t at = best_score.size();
    while (at > 0 && best_score[at - 1] < score) --at;
    best_score.insert(best_score.begin() + long(at), score);
    best_index.insert(best_index.begin() + long(at), index);
    if (best_score.size() > keep) {
      best_score.pop_back();
      best_index.pop_back();
    }
  };
  for (int r = 0; r < rows; ++r) {
    const int64_t base = int64_t(r) * vocab;
    if (frozen[size_t(r)]) {  // offers itself (EOS) once; every other token scores -inf
      for (int v = 0; v < vocab; ++v)
        offer(v == eos_id ? sums[size_t(r)] / double(lengths[size_t(r)]) : ninf, base + v);
      continue;
    }
    const double sum = sums[size_t(r)], length = double(lengths[size_t(r)] + 1);
    const double* lp = logprobs + base;
    // A live row's score rises with its log-prob, so once `width` are kept, a log-prob
    // clearly below what the last kept score needs cannot enter: skipped without its
    // division. The margin is far above the rounding of the two operations it stands for.
    double need = -std::numeric_limits<double>::infinity();
    for (int v = 0; v < vocab; ++v) {
      if (lp[v] < need) continue;
      offer((sum + lp[v]) / length, base + v);
      if (best_score.size() == keep) {
        const double bar = best_score.back() * length - sum;
        need = bar - 1e-9 * (1.0 + std::fabs(bar) + std::fabs(sum));
      }
    }
  }
  parents.resize(keep);
  tokens.resize(keep);
  for (size_t i = 0; i < keep; ++i) {
    parents[i] = best_index[i] / vocab;
    tokens[i] = best_index[i] % vocab;
  }
}

namespace {
// One group's hypotheses: parallel arrays over its rows.
struct Beams {
  std::vector<double> sums{0.0};
  std::vector<int64_t> lengths{0};
  std::vector<bool> frozen{false};
  std::vector<std::vector<int64_t>> hyps{{}};
};
}  // namespace

std::vector<BeamResult> beam_search_groups(Stepper& s, FloatOut logits, int start_pos, int steps, int64_t eos_id,
                                           int width) {
  const int groups = logits.shape[0];
  std::vector<Beams> beams(static_cast<size_t>(groups));
  int rows_per_group = 1;  // the prefill gave each group one row
  int pos = start_pos;
  std::vector<int64_t> parents, chosen;
  for (int i = 0; i < steps; ++i) {
    const int vocab = logits.shape.back();
    std::vector<double> lp = log_softmax(logits, logits.shape[0], vocab);
    std::vector<int64_t> cache_rows, step_tokens;
    for (int g = 0; g < groups; ++g) {
      Beams& b = beams[size_t(g)];
      const double* group_lp = lp.data() + size_t(g) * rows_per_group * vocab;
      beam_select(group_lp, rows_per_group, vocab, b.sums, b.lengths, b.frozen, eos_id, width, parents, chosen);
      Beams next;
      next.sums.resize(parents.size());
      next.lengths.resize(parents.size());
      next.frozen.resize(parents.size());
      next.hyps.resize(parents.size());
      for (size_t j = 0; j < parents.size(); ++j) {
        int64_t p = parents[j];
        bool was = b.frozen[size_t(p)];
        next.sums[j] = b.sums[size_t(p)] + (was ? 0.0 : group_lp[size_t(p) * vocab + size_t(chosen[j])]);
        next.lengths[j] = b.lengths[size_t(p)] + (was ? 0 : 1);
        next.frozen[j] = was || chosen[j] == eos_id;
        next.hyps[j] = b.hyps[size_t(p)];
        next.hyps[j].push_back(chosen[j]);
        cache_rows.push_back(int64_t(g) * rows_per_group + p);
        step_tokens.push_back(chosen[j]);
      }
      b = std::move(next);
    }
    if (i + 1 < steps) {
      const int rows = int(step_tokens.size());
      std::vector<float> e = s.embed(step_tokens, rows, 1);
      logits = s.step(e, rows, 1, {pos}, cache_rows, i ? start_pos : 0);
      ++pos;
    }
    rows_per_group = width;
  }
  std::vector<BeamResult> results;
  for (const Beams& b : beams) {
    size_t best = 0;
    double best_score = b.sums[0] / double(b.lengths[0]);
    for (size_t j = 1; j < b.sums.size(); ++j) {
      double f = b.sums[j] / double(b.lengths[j]);
      if (f > best_score) {  // first maximum: the lowest row wins ties
        best = j;
        best_score = f;
      }
    }
    results.push_back({b.hyps[best], best_score});
  }
  return results;
}

BeamResult beam_search(Stepper& s, FloatOut logits, int start_pos, int steps, int64_t eos_id, int width) {
  return beam_search_groups(s, std::move(logits), start_pos, steps, eos_id, width).at(0);
}

std::vector<int64_t> trim_after_eos(const std::vector<int64_t>& tokens, int64_t eos_id) {
  auto it = std::find(tokens.begin(), tokens.end(), eos_id);
  return std::vector<int64_t>(tokens.begin(), it);
}

int prompt_room(int max_context, int prefix_len, int steps, bool bos) {
  int room = max_context - (bos ? 1 : 0) - prefix_len - steps;
  if (room < 0)
    throw std::runtime_error(std::to_string(steps) + " steps + " + std::to_string(prefix_len) +
                             " prefix tokens do not fit the context of " + std::to_string(max_context));
  return room;
}

}  // namespace atom
