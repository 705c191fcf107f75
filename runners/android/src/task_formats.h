// The decoder's text-task formats, mirroring runners/python/atom_runner/task_formats.py: the
// prompts the decoder is trained on.
#pragma once
#include <string>
#include <vector>

namespace atom {

// Whitespace and control characters runs become one space: the task format is line-based, so a
// caption or request becomes one line (Python's clean_caption).
std::string one_line(const std::string& text);
// The script prompt of video assembly: ranked captions, the request, the cue.
std::string assembly_prompt(const std::vector<std::string>& ranked_captions, const std::string& request);

}  // namespace atom
