// Chat prompts without Jinja: the export precompiles the checkpoint's chat template into a
// default system block, each role's prefix and suffix, and the generation prompt
// (atom_deploy/export/chat_parts.py, which keeps them only when composing them gives the
// template's own text). Composing here gives the text the Python runner renders with the
// template (runners/python/atom_runner/chat.py compose_parts is this function in Python).
#pragma once
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "nlohmann/json.hpp"

namespace atom {

struct ChatMessage {
  std::string role, content;
};

struct ChatParts {
  bool template_present = false;  // the manifest has a chat record
  bool present = false;           // ... with parts this runner can compose
  std::string default_system, generation_prompt;
  std::map<std::string, std::pair<std::string, std::string>> roles;  // role -> (prefix, suffix)
};

inline const std::vector<std::string>& chat_roles() {
  static const std::vector<std::string> roles{"system", "user", "assistant"};
  return roles;
}

// The prompt text of `messages`, generation prompt included; throws std::runtime_error when
// the export has no composable template or a role is unknown.
std::string compose_chat(const ChatParts& parts, const std::vector<ChatMessage>& messages);

// [{"role": ..., "content": ...}, ...] from a JSON file (at most 1 MiB); one-line errors.
std::vector<ChatMessage> read_messages(const std::string& path);
// The same list from an already-parsed value (a serve request); errors name `what`.
std::vector<ChatMessage> messages_from_json(const nlohmann::json& j, const std::string& what);

}  // namespace atom
