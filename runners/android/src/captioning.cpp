#include "captioning.h"

#include <algorithm>
#include <future>
#include <numeric>
#include <stdexcept>
#include <string>

#include "stopwatch.h"
#include "task_json.h"

namespace atom {

std::vector<Decoded> caption_clips(Runner& r, const std::vector<std::string>& clips, int beam, bool overlap,
                                   CaptionTimings& t, int clips_together) {
  auto t0 = Clock::now();
  const int steps = r.manifest().decode_steps;
  const int most = r.clips_per_batch(beam);
  if (clips_together < 0 || clips_together > most)
    throw std::runtime_error("--batch must be between 1 and " + std::to_string(most) + " clips at beam " +
                                std::to_string(beam) + ", got " + std::to_string(clips_together));
  const size_t batch = size_t(clips_together == 0 ? most : clips_together);
  std::vector<double> enc_seconds(clips.size(), 0.0);
  // Encodes clips [first, first + batch) into one block of visual prefixes.
  auto encode_batch = [&r, &clips, &enc_seconds, batch](size_t first) {
    std::vector<float> prefixes;
    for (size_t i = first; i < std::min(clips.size(), first + batch); ++i) {
      auto s = Clock::now();
      std::vector<float> prefix = r.encode(r.read_clip(clips[i]));
      enc_seconds[i] = seconds_since(s);
      prefixes.insert(prefixes.end(), prefix.begin(), prefix.end());
    }
    return prefixes;
  };
  std::vector<Decoded> out;
  auto decode_batch = [&](size_t first, const std::vector<float>& prefixes) {
    int rows = int(std::min(clips.size(), first + batch) - first);
    auto s = Clock::now();
    for (Decoded& d : r.decode_batch({}, prefixes, rows, beam, steps)) out.push_back(std::move(d));
    t.decode += seconds_since(s);
  };
  if (!overlap) {
    for (size_t first = 0; first < clips.size(); first += batch) decode_batch(first, encode_batch(first));
  } else {
    // The encoder works on the next batch while this one decodes. std::async(launch::async)
    // runs on its own std::thread and carries exceptions back.
    std::future<std::vector<float>> pending;
    if (!clips.empty()) pending = std::async(std::launch::async, encode_batch, size_t(0));
    for (size_t first = 0; first < clips.size(); first += batch) {
      auto w = Clock::now();
      std::vector<float> prefixes = pending.get();  // rethrows the encoder's error
      t.encode_wait += seconds_since(w);
      if (first + batch < clips.size()) pending = std::async(std::launch::async, encode_batch, first + batch);
      try {
        decode_batch(first, prefixes);
      } catch (...) {
        if (pending.valid()) pending.wait();
        throw;
      }
    }
  }
  t.encode = std::accumulate(enc_seconds.begin(), enc_seconds.end(), 0.0);
  t.wall = seconds_since(t0);
  return out;
}

Json timings_json(const CaptionTimings& t, bool overlap) {
  double serial = t.encode + t.decode;
  double hidden = std::max(0.0, serial - t.wall);
  double hideable = std::min(t.encode, t.decode);
  return {{"overlap", overlap},
          {"wall_s", json_number(t.wall)},
          {"encode_s", json_number(t.encode)},
          {"decode_s", json_number(t.decode)},
          {"encode_wait_s", json_number(t.encode_wait)},
          {"hidden_s", json_number(hidden)},
          {"overlap_fraction", json_number(hideable > 0 ? hidden / hideable : 0.0)}};
}

Json caption_json(const std::vector<std::string>& clips, const std::vector<Decoded>& caps, const CaptionTimings& t,
                  bool overlap) {
  Json captions = Json::array();
  for (size_t i = 0; i < caps.size(); ++i) {
    Json c = decoded_json(caps[i]);
    c["clip"] = clips[i];
    captions.push_back(std::move(c));
  }
  return {{"captions", captions}, {"timings", timings_json(t, overlap)}};
}

}  // namespace atom
