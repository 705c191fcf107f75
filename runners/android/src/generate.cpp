// The text-only generate path of the Runner, mirroring runners/python/atom_runner/prompts.py
// and Session.generate / Session.chat: the checkpoint's BOS rule, every EOS id, the chat
// template's precompiled parts, and what a prompt longer than the context does.
#include <stdexcept>
#include <string>

#include "runner.h"

namespace atom {

std::vector<int64_t> trim_after_any_eos(const std::vector<int64_t>& tokens, const std::vector<int64_t>& eos_ids) {
  for (size_t i = 0; i < tokens.size(); ++i)
    for (int64_t eos : eos_ids)
      if (tokens[i] == eos) return std::vector<int64_t>(tokens.begin(), tokens.begin() + long(i));
  return tokens;
}

Decoded Runner::generate_ids(std::vector<int64_t> ids, int beam, int steps, bool bos, bool truncate) {
  if (beam < 1 || beam > m_.max_batch)
    throw std::runtime_error("beam must be between 1 and " + std::to_string(m_.max_batch) + ", got " +
                             std::to_string(beam));
  if (steps < 1) throw std::runtime_error("steps must be at least 1");
  const int room = prompt_room(m_.max_context, 0, steps, bos);
  if (int(ids.size()) > room) {
    if (!truncate)
      throw std::runtime_error("the prompt has " + std::to_string(ids.size()) + " tokens but " + std::to_string(room) +
                               " fit the exported context of " + std::to_string(m_.max_context) +
                               " beside the decode steps: shorten it, export with a larger --max-context, or pass "
                               "--truncate to keep its last " + std::to_string(room));
    ids.erase(ids.begin(), ids.end() - room);  // the end holds the question and the cue the model answers
  }
  if (ids.empty() && !bos)
    throw std::runtime_error("the prompt is empty and this checkpoint adds no BOS: there is nothing to continue");
  return decode(ids, {}, beam, steps, bos);
}

Decoded Runner::generate(const std::string& prompt, int beam, int steps, bool truncate) {
  return generate_ids(bpe_->encode(prompt), beam, steps, m_.add_bos, truncate);
}

std::vector<int64_t> Runner::chat_ids(const std::vector<ChatMessage>& messages) {
  return bpe_->encode(compose_chat(m_.chat, messages));
}

// The template carries its own BOS, if any: apply_chat_template adds no special tokens.
Decoded Runner::chat(const std::vector<ChatMessage>& messages, int beam, int steps, bool truncate) {
  return generate_ids(chat_ids(messages), beam, steps, false, truncate);
}

}  // namespace atom
