// One run of one variant of `atom-deploy bench --device`, in this fresh process:
//   no_reuse  the paper's sequential baseline: each stage loads its own modules and releases them
//             (video model -> captions; MiniLM -> index; the decoder loaded again -> script);
//   atom      one Runner, every module loaded once, encode/decode overlapped, decoder reused.
// Prints the same JSON as Python's atom_deploy/bench/reuse_worker.py, so one summary reads both.
#pragma once
#include <string>
#include <vector>

namespace atom {

std::string reuse_variant_json(const std::string& artifacts, const std::string& variant,
                               const std::vector<std::string>& clips, const std::string& prompt, int beam);

}  // namespace atom
