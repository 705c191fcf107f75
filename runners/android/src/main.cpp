// atom_runner: the on-device runner. JSON on stdout, one-line errors on stderr, exit 0/1/2.
//
//   atom_runner caption  --artifacts DIR [--beam 4] [--no-overlap] CLIP.bin...
//   atom_runner embed    --artifacts DIR TEXT...
//   atom_runner search   --artifacts DIR --query TEXT (--embeddings FILE.bin | TEXT...) [--top K]
//   atom_runner generate --artifacts DIR [--beam 1] [--steps N] [--truncate] PROMPT
//   atom_runner generate --artifacts DIR --chat [--system TEXT] ... MESSAGE   (the chat template's parts)
//   atom_runner generate --artifacts DIR --messages FILE.json ...             ([{"role", "content"}, ...])
//   atom_runner pipeline --artifacts DIR --prompt TEXT [--top K] [--beam 4] CLIP.bin...
//   atom_runner bench    --artifacts DIR [--iters 3] [--beam 4] CLIP.bin...
//   atom_runner reuse-bench --artifacts DIR --variant no_reuse|atom --prompt TEXT [--beam 4] CLIP.bin...
//                                  (one run of one `atom-deploy bench --device` variant)
//   atom_runner latency  --artifacts DIR [--iters 5]    (stage times, as `atom-deploy latency` measures them)
//   atom_runner tokenize --artifacts DIR (--decoder|--minilm) TEXT...   (token ids, for tests)
//   atom_runner tokenize --artifacts DIR --messages FILE.json          (a chat prompt's ids, for tests)
//   atom_runner device-info [--artifacts DIR]   (build, CPU features, kernels used: device_info.h)
// Any subcommand takes --cpu-disable sme[,...]: the runtime sees a CPU without those features
// (applied before main by device_info.cpp).
// "--" ends the options: later arguments are texts/clips even when they start with "--".
#include <cstdio>
#include <cstring>
#include <exception>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "device_info.h"
#include "latency.h"
#include "reuse_bench.h"
#include "runner.h"
#include "runtime_log.h"
#include "tasks.h"

namespace {

struct Args {
  std::string cmd;
  std::map<std::string, std::string> opts;
  std::vector<std::string> flags, positional;
  std::string get(const std::string& k, const std::string& d = "") const {
    auto it = opts.find(k);
    return it == opts.end() ? d : it->second;
  }
  bool flag(const std::string& k) const {
    for (const auto& f : flags)
      if (f == k) return true;
    return false;
  }
};

const char* kUsage =
    "usage: atom_runner {caption|embed|search|generate|pipeline|bench|reuse-bench|latency|tokenize|device-info} --artifacts DIR [options] ARGS...\n";

Args parse(int argc, char** argv) {
  if (argc < 2) throw std::invalid_argument("missing subcommand");
  Args a;
  a.cmd = argv[1];
  static const char* kValued[] = {"--artifacts", "--beam", "--steps", "--query", "--embeddings",
                                  "--top",       "--prompt", "--iters", "--variant", "--cpu-disable",
                                  "--system",    "--messages"};
  bool options_done = false;
  for (int i = 2; i < argc; ++i) {
    std::string s = argv[i];
    if (options_done || s == "--") {  // everything after "--" is a positional argument
      if (options_done) a.positional.push_back(s);
      options_done = true;
      continue;
    }
    bool valued = false;
    for (const char* v : kValued) valued |= s == v;
    if (valued) {
      if (i + 1 >= argc) throw std::invalid_argument(s + " needs a value");
      a.opts[s] = argv[++i];
    } else if (s == "--no-overlap" || s == "--decoder" || s == "--minilm" || s == "--chat" || s == "--truncate") {
      a.flags.push_back(s);
    } else if (s.rfind("--", 0) == 0 && s.size() > 2) {
      throw std::invalid_argument("unknown option " + s);
    } else {
      a.positional.push_back(s);
    }
  }
  if (a.get("--artifacts").empty() && a.cmd != "device-info") throw std::invalid_argument("--artifacts DIR is required");
  return a;
}

int to_int(const std::string& s, const char* what) {
  try {
    size_t used = 0;
    int v = std::stoi(s, &used);
    if (used == s.size()) return v;
  } catch (...) {
  }
  throw std::invalid_argument(std::string(what) + " must be an integer, got " + s);
}

int run(const Args& a) {
  using namespace atom;
  const std::string dir = a.get("--artifacts");
  if (a.cmd == "device-info") {
    std::cout << device_info_json(dir) << "\n";
    return 0;
  }
  if (a.cmd == "bench") {
    std::cout << bench_json(dir, a.positional, to_int(a.get("--beam", "4"), "--beam"),
                            to_int(a.get("--iters", "3"), "--iters"))
              << "\n";
    return 0;
  }
  if (a.cmd == "reuse-bench") {  // a fresh process per run: it loads what its variant loads
    std::cout << reuse_variant_json(dir, a.get("--variant"), a.positional, a.get("--prompt"),
                                    to_int(a.get("--beam", "4"), "--beam"))
              << "\n";
    return 0;
  }
  if (a.cmd == "latency") {
    Runner r(dir, kEncoder | kDecoder);
    std::cout << latency_json(r, to_int(a.get("--iters", "5"), "--iters")) << "\n";
    return 0;
  }
  if (a.cmd != "caption" && a.cmd != "embed" && a.cmd != "search" && a.cmd != "generate" && a.cmd != "pipeline" &&
      a.cmd != "tokenize")
    throw std::invalid_argument("unknown subcommand " + a.cmd);
  Runner r(dir);
  const Manifest& m = r.manifest();
  if (a.cmd == "caption") {
    if (a.positional.empty()) throw std::invalid_argument("caption needs clip files");
    CaptionTimings t;
    bool overlap = !a.flag("--no-overlap");
    auto caps = caption_clips(r, a.positional, to_int(a.get("--beam", std::to_string(m.beam_width)), "--beam"),
                              overlap, t);
    std::cout << caption_json(a.positional, caps, t, overlap) << "\n";
  } else if (a.cmd == "embed") {
    std::cout << embed_json(r.embed(a.positional)) << "\n";
  } else if (a.cmd == "search") {
    std::string q = a.get("--query");
    if (q.empty()) throw std::invalid_argument("search needs --query");
    std::vector<float> query = r.embed({q})[0];
    auto index = a.get("--embeddings").empty() ? r.embed(a.positional) : read_embeddings(a.get("--embeddings"), query.size());
    auto ranked = rank(index, query, size_t(to_int(a.get("--top", "5"), "--top")));
    std::string s = "{\"results\":[";
    for (size_t i = 0; i < ranked.size(); ++i)
      s += (i ? "," : "") + std::string("{\"index\":") + std::to_string(ranked[i].first) +
           ",\"score\":" + std::to_string(ranked[i].second) + "}";
    std::cout << s << "]}\n";
  } else if (a.cmd == "generate") {
    const int beam = to_int(a.get("--beam", "1"), "--beam");
    const int steps = to_int(a.get("--steps", std::to_string(m.decode_steps)), "--steps");
    const bool truncate = a.flag("--truncate");
    Decoded d;
    if (!a.get("--messages").empty()) {
      if (!a.positional.empty()) throw std::invalid_argument("generate --messages takes no PROMPT");
      d = r.chat(read_messages(a.get("--messages")), beam, steps, truncate);
    } else {
      if (a.positional.size() != 1) throw std::invalid_argument("generate needs exactly one PROMPT");
      if (a.flag("--chat")) {
        std::vector<ChatMessage> messages;
        if (!a.get("--system").empty()) messages.push_back({"system", a.get("--system")});
        messages.push_back({"user", a.positional[0]});
        d = r.chat(messages, beam, steps, truncate);
      } else {
        if (!a.get("--system").empty()) throw std::invalid_argument("--system needs --chat");
        d = r.generate(a.positional[0], beam, steps, truncate);
      }
    }
    std::cout << decoded_json(d) << "\n";
  } else if (a.cmd == "pipeline") {
    if (a.get("--prompt").empty() || a.positional.empty())
      throw std::invalid_argument("pipeline needs --prompt and clip files");
    std::cout << pipeline_json(r, a.positional, a.get("--prompt"), to_int(a.get("--beam", "4"), "--beam"),
                               size_t(to_int(a.get("--top", "3"), "--top")), true)
              << "\n";
  } else if (!a.get("--messages").empty()) {  // tokenize --messages: the chat prompt's ids
    Decoded d{r.chat_ids(read_messages(a.get("--messages"))), ""};
    std::string j = decoded_json(d);
    std::cout << "{\"ids\":[" << j.substr(10, j.find(']') - 9) << "]}\n";
  } else {  // tokenize: one id list per text
    std::string s = "{\"ids\":[";
    for (size_t i = 0; i < a.positional.size(); ++i) {
      std::vector<int64_t> ids;
      if (a.flag("--minilm")) {
        WordPieceTokenizer wp(m.minilm_tokenizer, m.minilm_max_seq);
        ids = wp.encode(a.positional[i]);
      } else {
        ids = r.tokenizer().encode(a.positional[i]);
      }
      Decoded d{ids, ""};
      std::string j = decoded_json(d);
      s += (i ? "," : "") + j.substr(10, j.find(']') - 9);
    }
    std::cout << s << "]}\n";
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  atom::quiet_runtime_logs();
  Args a;
  try {
    a = parse(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "atom_runner: %s\n%s", e.what(), kUsage);
    return 2;
  }
  try {
    return run(a);
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "atom_runner: %s\n%s", e.what(), kUsage);
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "atom_runner: error: %s\n", e.what());
    return 1;
  }
}
