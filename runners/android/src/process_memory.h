// This process's memory peak, as the kernel counts it.
#pragma once

namespace atom {

double peak_rss_kb();  // VmHWM from /proc/self/status; -1 where it is not reported

}  // namespace atom
