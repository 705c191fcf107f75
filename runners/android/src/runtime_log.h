// ExecuTorch's own log lines (cpuinfo probing at the first XNNPACK load, the loader's
// complaint before an error we report anyway) stay off stderr, so a failure reads as the
// runner's one line. ATOM_VERBOSE=1 keeps them, as it does for the Python runner.
#pragma once

namespace atom {

// Call first thing in main.
void quiet_runtime_logs();

}  // namespace atom
