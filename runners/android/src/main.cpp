// atom_runner: the on-device runner. JSON on stdout, one-line errors on stderr, exit 0/1/2.
//
//   atom_runner caption  --artifacts DIR [--beam 4] [--batch N] [--no-overlap] CLIP.bin...
//   atom_runner embed    --artifacts DIR TEXT...
//   atom_runner search   --artifacts DIR --query TEXT (--embeddings FILE.bin | TEXT...) [--top K]
//   atom_runner generate --artifacts DIR [--beam 1] [--steps N] [--truncate] PROMPT
//   atom_runner generate --artifacts DIR --chat [--system TEXT] ... MESSAGE   (the chat template's parts)
//   atom_runner generate --artifacts DIR --messages FILE.json ...             ([{"role", "content"}, ...])
//   atom_runner pipeline --artifacts DIR --prompt TEXT [--top K] [--beam 4] CLIP.bin...
//   atom_runner reuse-bench --artifacts DIR --variant no_reuse|atom --prompt TEXT [--beam 4] CLIP.bin...
//                                  (one run of one variant of the reuse-vs-reload benchmark,
//                                   `atom-deploy bench --device`: reuse_bench.h)
//   atom_runner latency  --artifacts DIR [--iters 5]    (stage times, as `atom-deploy latency` measures them)
//   atom_runner tokenize --artifacts DIR (--decoder|--minilm) TEXT...   (token ids, for tests)
//   atom_runner tokenize --artifacts DIR --messages FILE.json          (a chat prompt's ids, for tests)
//   atom_runner device-info [--artifacts DIR]   (build, CPU features, kernels used: device_info.h)
//   atom_runner serve    --artifacts DIR        (resident: JSON-lines tasks on stdin, serve.h)
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

#include "commands.h"
#include "device_info.h"
#include "latency.h"
#include "reuse_bench.h"
#include "runner.h"
#include "runtime_log.h"
#include "serve.h"

namespace {

using Args = atom::Command;  // commands.h: the form serve builds from a JSON request too

const char* kUsage =
    "usage: atom_runner {caption|embed|search|generate|pipeline|reuse-bench|latency|tokenize|device-info|serve} --artifacts DIR [options] ARGS...\n";

Args parse(int argc, char** argv) {
  if (argc < 2) throw std::invalid_argument("missing subcommand");
  Args a;
  a.cmd = argv[1];
  static const char* kValued[] = {"--artifacts", "--beam", "--steps", "--query", "--embeddings",
                                  "--top",       "--prompt", "--iters", "--variant", "--cpu-disable",
                                  "--system",    "--messages", "--batch"};
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

int run(const Args& a) {
  using namespace atom;
  const std::string dir = a.get("--artifacts");
  if (a.cmd == "device-info") {
    std::cout << device_info_json(dir) << "\n";
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
  if (a.cmd == "serve") return serve(dir, std::cin, std::cout);
  if (!is_runner_task(a.cmd)) throw std::invalid_argument("unknown subcommand " + a.cmd);
  Runner r(dir);
  std::cout << run_task(r, a) << "\n";
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
