#include <cctype>
#include "tasks.h"

#include "json.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <future>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace atom {

using Clock = std::chrono::steady_clock;
static double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string floats_json(const std::vector<float>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + num(v[i]);
  return s + "]";
}

std::string decoded_json(const Decoded& d) {
  std::string s = "{\"tokens\":[";
  for (size_t i = 0; i < d.tokens.size(); ++i) s += (i ? "," : "") + std::to_string(d.tokens[i]);
  return s + "],\"text\":" + json_quote(d.text) + "}";
}

std::vector<Decoded> caption_clips(Runner& r, const std::vector<std::string>& clips, int beam, bool overlap,
                                   CaptionTimings& t) {
  auto t0 = Clock::now();
  const int steps = r.manifest().decode_steps;
  const size_t batch = size_t(r.clips_per_batch(beam));
  std::vector<double> enc_seconds(clips.size(), 0.0);
  // Encodes clips [first, first + batch) into one block of visual prefixes.
  auto encode_batch = [&r, &clips, &enc_seconds, batch](size_t first) {
    std::vector<float> prefixes;
    for (size_t i = first; i < std::min(clips.size(), first + batch); ++i) {
      auto s = Clock::now();
      std::vector<float> prefix = r.encode(r.read_clip(clips[i]));
      enc_seconds[i] = since(s);
      prefixes.insert(prefixes.end(), prefix.begin(), prefix.end());
    }
    return prefixes;
  };
  std::vector<Decoded> out;
  auto decode_batch = [&](size_t first, const std::vector<float>& prefixes) {
    int rows = int(std::min(clips.size(), first + batch) - first);
    auto s = Clock::now();
    for (Decoded& d : r.decode_batch({}, prefixes, rows, beam, steps)) out.push_back(std::move(d));
    t.decode += since(s);
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
      t.encode_wait += since(w);
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
  t.wall = since(t0);
  return out;
}

static std::string timings_json(const CaptionTimings& t, bool overlap) {
  double serial = t.encode + t.decode;
  double hidden = std::max(0.0, serial - t.wall);
  double hideable = std::min(t.encode, t.decode);
  return "{\"overlap\":" + std::string(overlap ? "true" : "false") + ",\"wall_s\":" + num(t.wall) +
         ",\"encode_s\":" + num(t.encode) + ",\"decode_s\":" + num(t.decode) + ",\"encode_wait_s\":" +
         num(t.encode_wait) + ",\"hidden_s\":" + num(hidden) +
         ",\"overlap_fraction\":" + num(hideable > 0 ? hidden / hideable : 0.0) + "}";
}

std::string caption_json(const std::vector<std::string>& clips, const std::vector<Decoded>& caps,
                         const CaptionTimings& t, bool overlap) {
  std::string s = "{\"captions\":[";
  for (size_t i = 0; i < caps.size(); ++i) {
    std::string d = decoded_json(caps[i]);
    s += (i ? "," : "") + std::string("{\"clip\":") + json_quote(clips[i]) + "," + d.substr(1);
  }
  return s + "],\"timings\":" + timings_json(t, overlap) + "}";
}

std::string embed_json(const std::vector<std::vector<float>>& embs) {
  std::string s = "{\"embeddings\":[";
  for (size_t i = 0; i < embs.size(); ++i) s += (i ? "," : "") + floats_json(embs[i]);
  return s + "]}";
}

std::vector<std::pair<size_t, double>> rank(const std::vector<std::vector<float>>& index,
                                            const std::vector<float>& query, size_t top) {
  std::vector<std::pair<size_t, double>> scored;
  for (size_t i = 0; i < index.size(); ++i) {
    if (index[i].size() != query.size()) throw std::runtime_error("embedding dimension mismatch");
    double dot = 0;
    for (size_t k = 0; k < query.size(); ++k) dot += double(index[i][k]) * double(query[k]);
    scored.emplace_back(i, dot);
  }
  std::stable_sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  if (scored.size() > top) scored.resize(top);
  return scored;
}

std::vector<std::vector<float>> read_embeddings(const std::string& path, size_t dim) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) throw std::runtime_error("cannot open embeddings " + path);
  size_t bytes = size_t(f.tellg());
  if (bytes == 0 || bytes % (dim * sizeof(float)))
    throw std::runtime_error("embeddings " + path + " is not a float32 [n, " + std::to_string(dim) + "] file");
  f.seekg(0);
  std::vector<std::vector<float>> out(bytes / (dim * sizeof(float)), std::vector<float>(dim));
  for (auto& row : out) {
    f.read(reinterpret_cast<char*>(row.data()), std::streamsize(dim * sizeof(float)));
    for (float v : row)  // a NaN row would rank anywhere and print as null: refuse it, as read_clip does
      if (!std::isfinite(v)) throw std::runtime_error("embeddings " + path + " contains NaN or infinite values");
  }
  return out;
}

std::string one_line(const std::string& text) {
  std::string out;
  bool space = false;
  for (unsigned char c : text) {
    if (std::isspace(c) || c < 0x20 || c == 0x7f) {
      space = !out.empty();
    } else {
      if (space) out += ' ';
      out += char(c);
      space = false;
    }
  }
  return out;
}

std::vector<std::pair<size_t, double>> rank_captions(Runner& r, const std::vector<Decoded>& captions,
                                                    const std::string& prompt, size_t top) {
  std::vector<std::string> texts;
  for (const auto& c : captions) texts.push_back(c.text);
  texts.push_back(prompt);  // embedded in the same MiniLM call as the captions
  auto embs = r.embed(texts);
  std::vector<float> query = embs.back();
  embs.pop_back();
  return rank(embs, query, top);
}

std::string assembly_prompt(const std::vector<std::string>& ranked_captions, const std::string& request) {
  // The kit's assembly format (runners/python/atom_runner/task_formats.py), the one the decoder is
  // trained on: the top captions as a 0-based list in rank order, then the request and
  // the cue. A script's "clip <i>" then names the i-th ranked clip.
  std::string out = "clips:";
  for (size_t i = 0; i < ranked_captions.size(); ++i) out += "\n" + std::to_string(i) + ": " + one_line(ranked_captions[i]);
  return out + "\nrequest: " + one_line(request) + "\nscript:";
}

std::string pipeline_json(Runner& r, const std::vector<std::string>& clips, const std::string& prompt, int beam,
                          size_t top, bool overlap) {
  auto t0 = Clock::now();
  CaptionTimings ct;
  std::vector<Decoded> caps = caption_clips(r, clips, beam, overlap, ct);
  auto s = Clock::now();
  auto ranked = rank_captions(r, caps, prompt, top);
  double embed_s = since(s);
  std::vector<std::string> top_captions;
  for (const auto& [clip, score] : ranked) top_captions.push_back(caps[clip].text);
  std::string script_prompt = assembly_prompt(top_captions, prompt);
  // As in Python: at least decode_steps, and all the room the prompt leaves.
  const auto& m = r.manifest();
  int prompt_len = int(r.tokenizer().encode(script_prompt).size());
  int steps = std::max(m.decode_steps, m.max_context - 1 - prompt_len);
  s = Clock::now();
  Decoded script = r.generate(script_prompt, 1, steps);  // greedy, as the Python pipelines: --beam is for captions
  double gen_s = since(s);
  std::string out = "{\"captions\":[";
  for (size_t i = 0; i < caps.size(); ++i) out += (i ? "," : "") + json_quote(caps[i].text);
  out += "],\"ranked\":[";
  for (size_t i = 0; i < ranked.size(); ++i)
    out += (i ? "," : "") + std::string("{\"clip\":") + std::to_string(ranked[i].first) + ",\"score\":" +
           num(ranked[i].second) + "}";
  out += "],\"script\":" + decoded_json(script) + ",\"timings\":{\"caption\":" + timings_json(ct, overlap) +
         ",\"embed_rank_s\":" + num(embed_s) + ",\"generate_s\":" + num(gen_s) + ",\"total_s\":" + num(since(t0)) +
         "}}";
  return out;
}

double peak_rss_kb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6));
  return -1;
}

static double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

std::string bench_json(const std::string& artifacts, const std::vector<std::string>& clips, int beam, int iters) {
  if (clips.empty()) throw std::runtime_error("bench needs at least one --clip");
  // Reload: every caption loads the modules again (what per-stage processes would do).
  std::vector<double> reload;
  for (int i = 0; i < iters; ++i) {
    auto s = Clock::now();
    Runner r(artifacts);
    CaptionTimings t;
    caption_clips(r, {clips[0]}, beam, false, t);
    reload.push_back(since(s));
  }
  // Reuse: one Runner serves every caption.
  auto s = Clock::now();
  Runner r(artifacts);
  double load_s = since(s);
  std::vector<double> reuse, enc, dec, embed_s, gen_s;
  for (int i = 0; i < iters; ++i) {
    auto c = Clock::now();
    CaptionTimings t;
    caption_clips(r, {clips[size_t(i) % clips.size()]}, beam, false, t);
    reuse.push_back(since(c));
    enc.push_back(t.encode);
    dec.push_back(t.decode);
    c = Clock::now();
    r.embed({"a person walks a dog in the park"});
    embed_s.push_back(since(c));
    c = Clock::now();
    r.generate("summary:", beam, r.manifest().decode_steps);
    gen_s.push_back(since(c));
  }
  CaptionTimings serial, overlapped;
  std::vector<std::string> many;
  for (int i = 0; i < std::max(iters, 2); ++i) many.push_back(clips[size_t(i) % clips.size()]);
  caption_clips(r, many, beam, false, serial);
  caption_clips(r, many, beam, true, overlapped);
  std::string out = "{\"iters\":" + std::to_string(iters) + ",\"beam\":" + std::to_string(beam) +
                    ",\"load_s\":{\"total\":" + num(load_s) + ",\"video_encoder\":" + num(r.load_seconds("video_encoder")) +
                    ",\"decoder\":" + num(r.load_seconds("decoder")) + ",\"minilm\":" + num(r.load_seconds("minilm")) +
                    "},\"caption_median_s\":{\"reload\":" + num(median(reload)) + ",\"reuse\":" + num(median(reuse)) +
                    "},\"stage_median_s\":{\"encode\":" + num(median(enc)) + ",\"decode\":" + num(median(dec)) +
                    ",\"embed\":" + num(median(embed_s)) + ",\"generate\":" + num(median(gen_s)) +
                    "},\"clips\":" + std::to_string(many.size()) + ",\"serial\":" + timings_json(serial, false) +
                    ",\"overlapped\":" + timings_json(overlapped, true) +
                    ",\"hardware_threads\":" + std::to_string(std::thread::hardware_concurrency()) +
                    ",\"peak_rss_kb\":" + num(peak_rss_kb()) + "}";
  return out;
}

}  // namespace atom
