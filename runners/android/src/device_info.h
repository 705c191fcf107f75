// device-info: what a parity report needs to be matched to a phone and a build.
//
//   atom_runner device-info [--artifacts DIR]
//
// Prints JSON: the runner's build (git commit, compiler, ExecuTorch version, baked in by CMake),
// the CPU features the kernel reports (getauxval AT_HWCAP/AT_HWCAP2, /proc/cpuinfo) and the
// ones the runtime is allowed to see, and, with --artifacts, the KleidiAI matmul kernels that
// XNNPACK actually called while running every module once.
//
// --cpu-disable sme[,sme2,sve,sve2,i8mm,dotprod,bf16,fp16] (any subcommand; or the environment's
// ATOM_CPU_DISABLE): the runner answers getauxval() for the whole process with those features
// cleared, so cpuinfo, XNNPACK and KleidiAI pick the kernels they would pick on a CPU without
// them. The safe path for a CPU whose kernels give wrong answers (docs/device_parity.md).
// Read before any library initialises (cpuinfo reads the features then, once); main() only
// has to accept the flag.
#pragma once
#include <string>

namespace atom {

// artifacts: "" for build and CPU only; a folder to also record the kernels its modules use.
std::string device_info_json(const std::string& artifacts);

}  // namespace atom
