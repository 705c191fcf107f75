#include "serve.h"

#include <climits>
#include <cstdio>
#include <stdexcept>
#include <vector>

#include "commands.h"
#include "et_module.h"
#include "json.h"
#include "process_memory.h"
#include "schema.h"
#include "stopwatch.h"
#include "task_formats.h"

namespace atom {

namespace {

// Far above any real request (clips travel as file paths, not tensors), and a bound on what
// one hostile line can make the runner hold.
constexpr size_t kMaxLineBytes = size_t(8) << 20;

// How a request's key becomes part of a Command: an option's value, a flag, or the positional
// arguments, exactly as the one-shot subcommand would receive it on its command line.
enum class Kind {
  kInt,          // "beam": 4               -> --beam 4
  kText,         // "query": "..."          -> --query ...
  kTexts,        // "clips": ["a", "b"]     -> positional a b
  kPrompt,       // "prompt": "..."         -> one positional
  kFlagIfTrue,   // "truncate": true        -> --truncate
  kFlagIfFalse,  // "overlap": false        -> --no-overlap
  kTokenizer,    // "tokenizer": "minilm"   -> --minilm
  kMessages,     // "messages": [{...}]     -> the chat, inline
};

struct Field {
  const char* key;
  Kind kind;
  const char* option;
};

struct Op {
  const char* name;
  std::vector<Field> fields;
};

const std::vector<Op>& ops() {
  static const std::vector<Op> table{
      {"caption", {{"clips", Kind::kTexts, ""}, {"beam", Kind::kInt, "--beam"}, {"batch", Kind::kInt, "--batch"}, {"overlap", Kind::kFlagIfFalse, "--no-overlap"}}},
      {"embed", {{"texts", Kind::kTexts, ""}}},
      {"search",
       {{"query", Kind::kText, "--query"}, {"texts", Kind::kTexts, ""}, {"embeddings", Kind::kText, "--embeddings"},
        {"top", Kind::kInt, "--top"}}},
      {"generate",
       {{"prompt", Kind::kPrompt, ""}, {"beam", Kind::kInt, "--beam"}, {"steps", Kind::kInt, "--steps"},
        {"truncate", Kind::kFlagIfTrue, "--truncate"}, {"chat", Kind::kFlagIfTrue, "--chat"},
        {"system", Kind::kText, "--system"}, {"messages", Kind::kMessages, ""}}},
      {"pipeline",
       {{"prompt", Kind::kText, "--prompt"}, {"clips", Kind::kTexts, ""}, {"top", Kind::kInt, "--top"},
        {"beam", Kind::kInt, "--beam"}}},
      {"tokenize", {{"texts", Kind::kTexts, ""}, {"tokenizer", Kind::kTokenizer, ""}, {"messages", Kind::kMessages, ""}}},
      {"stats", {}},
  };
  return table;
}

std::string names(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

const Op& find_op(const Json& request) {
  if (!request.contains("op")) throw std::invalid_argument("request has no \"op\"");
  const Json& op = request["op"];
  if (!op.is_string()) throw std::invalid_argument("\"op\" must be a string, got " + op.dump());
  std::vector<std::string> valid;
  for (const Op& o : ops()) {
    if (op.get<std::string>() == o.name) return o;
    valid.push_back(o.name);
  }
  throw std::invalid_argument("unknown op " + op.dump() + "; valid: " + names(valid));
}

// A command line cannot carry a NUL, and a path cut at one would name another file.
std::string text_of(const Json& v, const std::string& key) {
  if (!v.is_string()) throw std::invalid_argument("\"" + key + "\" must be a string, got " + v.dump());
  if (v.get_ref<const std::string&>().find('\0') != std::string::npos)
    throw std::invalid_argument("\"" + key + "\" contains a NUL character");
  return v.get<std::string>();
}

void add_field(Command& c, const Field& f, const Json& v) {
  const std::string key = f.key;
  switch (f.kind) {
    case Kind::kInt:
      if (!v.is_number_integer() || (v.is_number_unsigned() ? v.get<uint64_t>() > uint64_t(INT_MAX)
                                                             : v.get<int64_t>() < INT_MIN || v.get<int64_t>() > INT_MAX))
        throw std::invalid_argument("\"" + key + "\" must be an integer, got " + v.dump());
      c.opts[f.option] = std::to_string(v.get<int64_t>());
      return;
    case Kind::kText:
      c.opts[f.option] = text_of(v, key);
      return;
    case Kind::kTexts:
      if (!v.is_array()) throw std::invalid_argument("\"" + key + "\" must be a list of strings, got " + v.dump());
      for (const Json& item : v) c.positional.push_back(text_of(item, key + "[]"));
      return;
    case Kind::kPrompt:
      c.positional.push_back(text_of(v, key));
      return;
    case Kind::kFlagIfTrue:
    case Kind::kFlagIfFalse:
      if (!v.is_boolean()) throw std::invalid_argument("\"" + key + "\" must be true or false, got " + v.dump());
      if (v.get<bool>() == (f.kind == Kind::kFlagIfTrue)) c.flags.push_back(f.option);
      return;
    case Kind::kTokenizer: {
      const std::string which = text_of(v, key);
      if (which != "decoder" && which != "minilm")
        throw std::invalid_argument("\"tokenizer\" must be \"decoder\" or \"minilm\", got " + v.dump());
      c.flags.push_back("--" + which);
      return;
    }
    case Kind::kMessages:
      c.messages = messages_from_json(v, "\"messages\"");
      return;
  }
}

// The Command the one-shot subcommand would get for this request; unknown keys are errors
// that list the valid ones, so a misspelt option is never silently dropped.
Command to_command(const Json& request, const Op& op) {
  Command c;
  c.cmd = op.name;
  for (const auto& [key, value] : request.items()) {
    if (key == "id" || key == "op") continue;
    const Field* field = nullptr;
    for (const Field& f : op.fields)
      if (key == f.key) field = &f;
    if (!field) {
      std::vector<std::string> valid{"id", "op"};
      for (const Field& f : op.fields) valid.push_back(f.key);
      throw std::invalid_argument("unknown key " + json_quote(key) +
                                  " for " + op.name + "; valid: " + names(valid));
    }
    add_field(c, *field, value);
  }
  return c;
}

enum class Read { kLine, kTooLong, kEnd };

// One line, without its newline (or "\r\n"); a longer line than the limit is consumed and
// reported, never held.
Read read_line(std::istream& in, std::string& line) {
  line.clear();
  std::streambuf* buf = in.rdbuf();
  bool any = false, too_long = false;
  for (;;) {
    const int ch = buf->sbumpc();
    if (ch == std::char_traits<char>::eof()) {
      if (!any) return Read::kEnd;
      break;
    }
    any = true;
    if (ch == '\n') break;
    if (line.size() < kMaxLineBytes)
      line.push_back(char(ch));
    else
      too_long = true;
  }
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return too_long ? Read::kTooLong : Read::kLine;
}

struct Counts {
  long requests = 0, errors = 0;
  double load_s = 0;
};

Json stats_json(const Counts& n) {
  Json loads = Json::object();
  for (const auto& [module, count] : EtModule::loads()) loads[module] = count;
  return {{"loads", loads}, {"requests", n.requests}, {"errors", n.errors}, {"load_s", n.load_s},
          {"peak_rss_kb", peak_rss_kb()}};
}

Json answer(Runner& r, const Json& request, const Counts& n) {
  if (!request.is_object()) throw std::invalid_argument("a request must be a JSON object, got " + std::string(request.type_name()));
  const Op& op = find_op(request);
  Command c = to_command(request, op);
  if (c.cmd == "stats") return stats_json(n);
  return Json::parse(run_task(r, c));  // the one-shot subcommand's own output
}

void write_line(std::ostream& out, const Json& j) {
  out << json_dump(j) << '\n';
  out.flush();  // the client waits for this line before it sends the next request
}

}  // namespace

int serve(const std::string& artifacts, std::istream& in, std::ostream& out) {
  Counts n;
  const auto t0 = Clock::now();
  Runner r(artifacts);
  n.load_s = seconds_since(t0);
  std::string line;
  for (Read got; (got = read_line(in, line)) != Read::kEnd;) {
    ++n.requests;
    Json id = nullptr;
    try {
      if (got == Read::kTooLong)
        throw std::invalid_argument("request line is longer than " + std::to_string(kMaxLineBytes) + " bytes");
      Json request = parse_json(line, schema::limit::kDepth, "request");
      if (request.is_object() && request.contains("id")) id = request["id"];
      Json reply = answer(r, request, n);
      if (!id.is_null()) reply["id"] = id;
      write_line(out, reply);
    } catch (const std::exception& e) {
      ++n.errors;
      write_line(out, {{"id", id}, {"error", one_line(e.what())}});  // a request's text may hold newlines
    } catch (...) {
      ++n.errors;
      write_line(out, {{"id", id}, {"error", "the request failed with an unknown error"}});
    }
  }
  return 0;
}

}  // namespace atom
