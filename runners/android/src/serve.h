// atom_runner serve: a resident runner. The modules load once; each stdin line is one JSON
// request and gets exactly one JSON line on stdout, the task's own output (what the one-shot
// subcommand prints) with the request's "id" added:
//
//   {"id": 1, "op": "caption", "clips": ["a.bin"], "beam": 4, "overlap": true}
//   {"id": 2, "op": "embed", "texts": ["a red car"]}
//   {"id": 3, "op": "search", "query": "a dog", "texts": [...] | "embeddings": "FILE.bin", "top": 5}
//   {"id": 4, "op": "generate", "prompt": "...", "beam": 1, "steps": 16, "truncate": false,
//                               "chat": false, "system": "..."}  or  "messages": [{"role", "content"}, ...]
//   {"id": 5, "op": "pipeline", "prompt": "...", "clips": [...], "top": 3, "beam": 4}
//   {"id": 6, "op": "tokenize", "texts": [...], "tokenizer": "decoder" | "minilm"}  or  "messages": [...]
//   {"id": 7, "op": "stats"}   -> {"loads": {module: n}, "requests": n, "errors": n, "load_s": s, "peak_rss_kb": kb}
//
// A request that cannot be served (not JSON, an unknown op or key, a wrong type, a missing or
// malformed clip, a task error) gets {"id": ..., "error": "one line"} and the runner reads on.
// End of input ends the runner with exit status 0.
#pragma once
#include <iostream>
#include <string>

namespace atom {

// Loads the artifacts (a failure throws, as for any subcommand), then serves `in` until it ends.
int serve(const std::string& artifacts, std::istream& in, std::ostream& out);

}  // namespace atom
