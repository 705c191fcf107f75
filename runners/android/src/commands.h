// The tasks a loaded Runner serves, as one command: the subcommand, its valued options,
// flags and positional arguments. main.cpp builds a Command from argv (one task, then exit);
// serve.cpp builds one from each JSON request line. Both run it through run_task, so a task
// means the same thing on the command line and in a resident runner.
#pragma once
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "chat.h"
#include "runner.h"

namespace atom {

struct Command {
  std::string cmd;
  std::map<std::string, std::string> opts;  // "--beam" -> "4"
  std::vector<std::string> flags, positional;
  std::optional<std::vector<ChatMessage>> messages;  // a chat given inline (serve); argv names a --messages FILE

  std::string get(const std::string& k, const std::string& d = "") const {
    auto it = opts.find(k);
    return it == opts.end() ? d : it->second;
  }
  bool flag(const std::string& k) const {
    for (const auto& f : flags)
      if (f == k) return true;
    return false;
  }
};

// caption, embed, search, generate, pipeline, tokenize: the tasks that run on one loaded Runner.
bool is_runner_task(const std::string& cmd);

// The task's JSON (one line, no newline). Bad arguments throw std::invalid_argument; a task
// that fails (a missing clip, a prompt too long) throws std::runtime_error.
std::string run_task(Runner& r, const Command& c);

// std::invalid_argument naming `what` unless `s` is a whole int.
int to_int(const std::string& s, const char* what);

}  // namespace atom
