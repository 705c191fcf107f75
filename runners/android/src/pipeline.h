// The full pipeline on one loaded Runner: caption the clips, rank the captions against the
// request, write the assembly script from the top ones.
#pragma once
#include <string>
#include <vector>

#include "json.h"
#include "runner.h"

namespace atom {

// {"captions": [text...], "ranked": [{"clip", "score"}...], "script": {"tokens", "text"},
//  "timings": {"caption", "embed_rank_s", "generate_s", "total_s"}}
Json pipeline_json(Runner& r, const std::vector<std::string>& clips, const std::string& prompt, int beam, size_t top,
                   bool overlap);

}  // namespace atom
