// Wall-clock seconds for the runner's timings (one clock for every stage and report).
#pragma once

#include <chrono>

namespace atom {

using Clock = std::chrono::steady_clock;

inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace atom
