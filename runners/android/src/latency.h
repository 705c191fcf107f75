// atom_runner latency: the C++ runner's stage times, measured as the Python latency worker
// measures them (atom_deploy/bench/latency_worker.py), so the two runners compare
// side by side: encoder per clip, prefill (BOS + visual prefix), and a whole greedy and
// beam-4 decode per decoder call (selection and cache reorder included).
#pragma once
#include <string>

#include "runner.h"

namespace atom {

std::string latency_json(Runner& r, int repeat);

}  // namespace atom
