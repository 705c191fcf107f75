#include "commands.h"

#include <stdexcept>

#include "captioning.h"
#include "json.h"
#include "pipeline.h"
#include "ranking.h"
#include "task_json.h"

namespace atom {

int to_int(const std::string& s, const char* what) {
  try {
    size_t used = 0;
    int v = std::stoi(s, &used);
    if (used == s.size()) return v;
  } catch (...) {
  }
  throw std::invalid_argument(std::string(what) + " must be an integer, got " + s);
}

bool is_runner_task(const std::string& cmd) {
  for (const char* t : {"caption", "embed", "search", "generate", "pipeline", "tokenize"})
    if (cmd == t) return true;
  return false;
}

namespace {

bool has_messages(const Command& c) { return c.messages.has_value() || !c.get("--messages").empty(); }

std::vector<ChatMessage> messages(const Command& c) {
  return c.messages ? *c.messages : read_messages(c.get("--messages"));
}

std::string search(Runner& r, const Command& c) {
  std::string q = c.get("--query");
  if (q.empty()) throw std::invalid_argument("search needs --query");
  std::vector<float> query = r.embed({q})[0];
  auto index = c.get("--embeddings").empty() ? r.embed(c.positional) : read_embeddings(c.get("--embeddings"), query.size());
  Json results = Json::array();
  for (const auto& [row, score] : rank(index, query, size_t(to_int(c.get("--top", "5"), "--top"))))
    results.push_back({{"index", row}, {"score", score}});
  return json_dump({{"results", results}});
}

std::string generate(Runner& r, const Command& c) {
  const int beam = to_int(c.get("--beam", "1"), "--beam");
  const int steps = to_int(c.get("--steps", std::to_string(r.manifest().decode_steps)), "--steps");
  const bool truncate = c.flag("--truncate");
  if (has_messages(c)) {
    if (!c.positional.empty()) throw std::invalid_argument("generate --messages takes no PROMPT");
    return json_dump(decoded_json(r.chat(messages(c), beam, steps, truncate)));
  }
  if (c.positional.size() != 1) throw std::invalid_argument("generate needs exactly one PROMPT");
  if (c.flag("--chat")) {
    std::vector<ChatMessage> chat;
    if (!c.get("--system").empty()) chat.push_back({"system", c.get("--system")});
    chat.push_back({"user", c.positional[0]});
    return json_dump(decoded_json(r.chat(chat, beam, steps, truncate)));
  }
  if (!c.get("--system").empty()) throw std::invalid_argument("--system needs --chat");
  return json_dump(decoded_json(r.generate(c.positional[0], beam, steps, truncate)));
}

std::string tokenize(Runner& r, const Command& c) {
  Json ids = Json::array();  // one id list per text, or the chat prompt's one list
  if (has_messages(c)) {
    ids.push_back(r.chat_ids(messages(c)));
    return json_dump({{"ids", ids}});
  }
  for (const std::string& text : c.positional) {
    if (c.flag("--minilm")) {
      const Manifest& m = r.manifest();
      ids.push_back(WordPieceTokenizer(m.minilm_tokenizer, m.minilm_max_seq).encode(text));
    } else {
      ids.push_back(r.tokenizer().encode(text));
    }
  }
  return json_dump({{"ids", ids}});
}

}  // namespace

std::string run_task(Runner& r, const Command& c) {
  if (c.cmd == "caption") {
    if (c.positional.empty()) throw std::invalid_argument("caption needs clip files");
    CaptionTimings t;
    bool overlap = !c.flag("--no-overlap");
    int batch = 0;  // the most clips the KV-cache rows hold at this beam
    if (!c.get("--batch").empty()) {
      batch = to_int(c.get("--batch"), "--batch");
      if (batch < 1) throw std::runtime_error("--batch must be at least 1, got " + c.get("--batch"));
    }
    auto caps = caption_clips(r, c.positional,
                              to_int(c.get("--beam", std::to_string(r.manifest().beam_width)), "--beam"), overlap, t,
                              batch);
    return json_dump(caption_json(c.positional, caps, t, overlap));
  }
  if (c.cmd == "embed") return json_dump(embeddings_json(r.embed(c.positional)));
  if (c.cmd == "search") return search(r, c);
  if (c.cmd == "generate") return generate(r, c);
  if (c.cmd == "pipeline") {
    if (c.get("--prompt").empty() || c.positional.empty())
      throw std::invalid_argument("pipeline needs --prompt and clip files");
    return json_dump(pipeline_json(r, c.positional, c.get("--prompt"), to_int(c.get("--beam", "4"), "--beam"),
                                   size_t(to_int(c.get("--top", "3"), "--top")), true));
  }
  if (c.cmd == "tokenize") return tokenize(r, c);
  throw std::invalid_argument("unknown subcommand " + c.cmd);
}

}  // namespace atom
