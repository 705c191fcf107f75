#include "task_formats.h"

#include <cctype>

namespace atom {

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

std::string assembly_prompt(const std::vector<std::string>& ranked_captions, const std::string& request) {
  // The top captions as a 0-based list in rank order, then the request and the cue. A
  // script's "clip <i>" then names the i-th ranked clip.
  std::string out = "clips:";
  for (size_t i = 0; i < ranked_captions.size(); ++i) out += "\n" + std::to_string(i) + ": " + one_line(ranked_captions[i]);
  return out + "\nrequest: " + one_line(request) + "\nscript:";
}

}  // namespace atom
