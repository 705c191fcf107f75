#include "process_memory.h"

#include <fstream>
#include <string>

namespace atom {

double peak_rss_kb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6));
  return -1;
}

}  // namespace atom
