#include "chat.h"

#include <stdexcept>

#include "json.h"
#include "schema.h"

namespace atom {

std::string compose_chat(const ChatParts& parts, const std::vector<ChatMessage>& messages) {
  if (!parts.template_present)
    throw std::runtime_error("this export has no chat template (the checkpoint had none): generate a plain prompt");
  if (!parts.present)
    throw std::runtime_error("this export's chat template does not decompose into role prefixes and suffixes; "
                             "only the Python runner can render it");
  if (messages.empty()) throw std::runtime_error("chat needs at least one message");
  std::string text = messages[0].role == "system" ? "" : parts.default_system;
  for (size_t i = 0; i < messages.size(); ++i) {
    auto it = parts.roles.find(messages[i].role);
    if (it == parts.roles.end())
      throw std::runtime_error("message " + std::to_string(i) + " has role " + json_quote(messages[i].role) +
                               "; valid: system, user, assistant");
    text += it->second.first + messages[i].content + it->second.second;
  }
  return text + parts.generation_prompt;
}

std::vector<ChatMessage> read_messages(const std::string& path) {
  return messages_from_json(read_json_file(path, schema::limit::kManifestBytes, schema::limit::kDepth), path);
}

std::vector<ChatMessage> messages_from_json(const Json& j, const std::string& what) {
  if (!j.is_array() || j.empty()) throw std::runtime_error(what + ": messages must be a non-empty JSON list");
  std::vector<ChatMessage> out;
  for (size_t i = 0; i < j.size(); ++i) {
    const Json& m = j[i];
    if (!m.is_object() || m.size() != 2 || !m.contains("role") || !m.contains("content") || !m["role"].is_string() ||
        !m["content"].is_string())
      throw std::runtime_error(what + ": message " + std::to_string(i) +
                               " must be an object with exactly a string 'role' and a string 'content'");
    out.push_back({m["role"].get<std::string>(), m["content"].get<std::string>()});
  }
  return out;
}

}  // namespace atom
