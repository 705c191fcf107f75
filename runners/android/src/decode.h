// The decode loop, mirroring runners/python/atom_runner/decoding one for one:
// prefill = BOS + visual prefix + prompt in one call, then exactly `steps` selections
// (greedy argmax, or beam search with float64 log-softmax, length-normalised scores,
// EOS freezing and stable tie ranking), the caller trims after EOS.
#pragma once
#include <cstdint>
#include <vector>

#include "et_module.h"

namespace atom {

// attend_pos grows this many positions at a time (decoding/stepper.py ATTEND_BLOCK): each
// new length makes XNNPACK re-plan the attention's delegate calls.
inline constexpr int kAttendBlock = 16;

// How many cache positions a step whose last position is last_pos attends over
// (stepper.py attended_length): the context so far, rounded up to a whole block.
int attended_length(int64_t last_pos, int max_context);

class Stepper {
 public:
  // Runs one step at the largest shape the program takes (every cache row, the whole
  // cache attended): XNNPACK then never grows its workspace again (stepper.py _size_workspace).
  Stepper(EtModule& decoder, int dim);
  // tokens [rows, seq] -> embeds [rows*seq*dim]
  std::vector<float> embed(const std::vector<int64_t>& tokens, int rows, int seq);
  // embeds [rows, seq, dim], input_pos [seq], cache_index [rows] -> logits [rows, V].
  // Row r continues from cache row cache_index[r]; positions below shared_until hold the
  // same keys in every row, so the in-graph reorder moves only shared_until..input_pos[0]-1.
  FloatOut step(const std::vector<float>& embeds, int rows, int seq, const std::vector<int64_t>& input_pos,
                const std::vector<int64_t>& cache_index, int64_t shared_until = 0);
  int dim() const { return dim_; }

 private:
  EtModule& decoder_;
  int dim_, max_context_ = 0;
};

struct Prefilled {
  FloatOut logits;  // [rows, V]
  int next_pos;
};

// prefixes: `rows` visual prefixes [rows * n_vis * dim] (empty: one text-only row); each
// row is [BOS] + its prefix + the prompt, all in one call. bos_id < 0: no BOS.
Prefilled prefill(Stepper& s, int64_t bos_id, const std::vector<int64_t>& prompt, const std::vector<float>& prefixes,
                  int rows = 1);
// Every row of logits [rows, V] continues greedily on its own cache row.
std::vector<std::vector<int64_t>> greedy_rows(Stepper& s, FloatOut logits, int start_pos, int steps);
std::vector<int64_t> greedy(Stepper& s, FloatOut logits, int start_pos, int steps);

struct BeamResult {
  std::vector<int64_t> tokens;  // untrimmed, `steps` long
  double score;
};
// One beam search per row of the prefill's logits [groups, V], in one batch of
// groups x width cache rows; a group's hypotheses are ranked and reordered only among
// themselves (decoding/beam.py beam_search_groups).
std::vector<BeamResult> beam_search_groups(Stepper& s, FloatOut logits, int start_pos, int steps, int64_t eos_id,
                                           int width);
BeamResult beam_search(Stepper& s, FloatOut logits, int start_pos, int steps, int64_t eos_id, int width);

// One beam selection over [rows, V] float64 log-probs: the rule of decoding/beam.py select.
void beam_select(const double* logprobs, int rows, int vocab, const std::vector<double>& sums,
                 const std::vector<int64_t>& lengths, const std::vector<bool>& frozen, int64_t eos_id, int width,
                 std::vector<int64_t>& parents, std::vector<int64_t>& tokens);

// The positions a reorder must move (decoding/stepper.py reorder_positions): the step's
// own position when every row continues from itself, as the graph takes at least one.
std::vector<int64_t> reorder_positions(const std::vector<int64_t>& cache_index, int64_t start, int64_t shared_until);

std::vector<int64_t> trim_after_eos(const std::vector<int64_t>& tokens, int64_t eos_id);
int prompt_room(int max_context, int prefix_len, int steps, bool bos = true);  // throws if negative

}  // namespace atom
