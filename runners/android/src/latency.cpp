#include "latency.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <random>

#include "json.h"
#include "stopwatch.h"

namespace atom {

namespace {

// Median of `repeat` results of fn, after one warm-up call (first calls pay one-off packing).
double median_of(int repeat, const std::function<double()>& fn) {
  fn();
  std::vector<double> v;
  for (int i = 0; i < repeat; ++i) v.push_back(fn());
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

std::string latency_json(Runner& r, int repeat) {
  if (repeat < 1) throw std::invalid_argument("--iters must be at least 1");
  const Manifest& m = r.manifest();
  size_t clip_size = 1;
  for (int d : m.clip_shape) clip_size *= size_t(d);
  std::mt19937 gen(0);
  std::normal_distribution<float> normal;
  std::vector<float> clip(clip_size);
  for (auto& x : clip) x = normal(gen);
  std::vector<float> prefix = r.encode(clip);
  Stepper& s = r.stepper();
  int steps = m.decode_steps;
  double encoder = median_of(repeat, [&] {
    auto t = Clock::now();
    r.encode(clip);
    return seconds_since(t);
  });
  int prefill_tokens = 0;
  double prefill_s = median_of(repeat, [&] {
    auto t = Clock::now();
    prefill_tokens = prefill(s, m.bos_id, {}, prefix).next_pos;
    return seconds_since(t);
  });
  auto decode_step = [&](int width) {
    return median_of(repeat, [&] {
      Prefilled p = prefill(s, m.bos_id, {}, prefix);
      auto t = Clock::now();
      if (width == 1)
        greedy(s, p.logits, p.next_pos, steps);
      else
        beam_search(s, p.logits, p.next_pos, steps, m.eos_id, width);
      return seconds_since(t) / std::max(steps - 1, 1);
    });
  };
  double greedy_s = decode_step(1);
  double beam_s = decode_step(std::min(4, m.max_batch));
  return json_dump({{"runner", "cpp"},
                    {"encoder_s", json_number(encoder)},
                    {"prefill_s", json_number(prefill_s)},
                    {"prefill_tokens", prefill_tokens},
                    {"greedy_step_s", json_number(greedy_s)},
                    {"beam4_step_s", json_number(beam_s)},
                    {"repeat", repeat}});
}

}  // namespace atom
