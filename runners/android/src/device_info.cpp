// device-info and the CPU-feature mask (see device_info.h).
//
// Two interpositions, AArch64 only. Symbols defined in the executable come first in the
// dynamic linker's lookup, so:
//  - getauxval/__getauxval: cpuinfo (libexecutorch_threadpool.so) and XNNPACK
//    (libexecutorch_backend_xnnpack.so) read the CPU's features only through these, so
//    answering them with ATOM_CPU_DISABLE's features cleared changes every kernel choice
//    the runtime makes, the way a CPU without those features would.
//  - kai_run_matmul_*: XNNPACK calls KleidiAI's matmul kernels through the PLT, so a wrapper
//    here counts each call and jumps on. The wheel has no API that names its kernels; this
//    is the only way to see which family ran.
#include "device_info.h"

#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "build_info.h"  // generated at build time: ATOM_GIT_COMMIT, ATOM_GIT_DIRTY
#include "json.h"
#include "runner.h"

#ifndef ATOM_COMPILER
#define ATOM_COMPILER "unknown"
#endif
#ifndef ATOM_BUILD_TYPE
#define ATOM_BUILD_TYPE "unknown"
#endif
#ifndef ATOM_EXECUTORCH_VERSION
#define ATOM_EXECUTORCH_VERSION "unknown"
#endif
#if defined(__aarch64__)
#define ATOM_ARCH "aarch64"
#else
#define ATOM_ARCH "x86_64"
#endif

// The build record, once, as a JSON object behind a marker: device-info prints it, and
// `atom-deploy device bundle` reads it from the binary's bytes without running it.
extern "C" __attribute__((used)) const char atom_build_info[] =
    "ATOM_BUILD_INFO:{\"commit\":\"" ATOM_GIT_COMMIT "\",\"dirty\":" ATOM_GIT_DIRTY_JSON
    ",\"compiler\":\"" ATOM_COMPILER "\",\"build_type\":\"" ATOM_BUILD_TYPE "\",\"arch\":\"" ATOM_ARCH
    "\",\"executorch\":\"" ATOM_EXECUTORCH_VERSION "\"}";

namespace {

constexpr unsigned long kAtHwcap = 16, kAtHwcap2 = 26;  // <elf.h>; <sys/auxv.h> would clash with the override

struct Bit {
  const char* name;
  int word;  // 1: AT_HWCAP, 2: AT_HWCAP2
  int bit;
};

// Linux arch/arm64/include/uapi/asm/hwcap.h (the bits a kernel of 2023 reports).
const Bit kBits[] = {
    {"fp", 1, 0},          {"asimd", 1, 1},       {"aes", 1, 3},         {"pmull", 1, 4},
    {"sha1", 1, 5},        {"sha2", 1, 6},        {"crc32", 1, 7},       {"atomics", 1, 8},
    {"fphp", 1, 9},        {"asimdhp", 1, 10},    {"cpuid", 1, 11},      {"asimdrdm", 1, 12},
    {"jscvt", 1, 13},      {"fcma", 1, 14},       {"lrcpc", 1, 15},      {"dcpop", 1, 16},
    {"sha3", 1, 17},       {"sm3", 1, 18},        {"sm4", 1, 19},        {"asimddp", 1, 20},
    {"sha512", 1, 21},     {"sve", 1, 22},        {"asimdfhm", 1, 23},   {"dit", 1, 24},
    {"uscat", 1, 25},      {"ilrcpc", 1, 26},     {"flagm", 1, 27},      {"ssbs", 1, 28},
    {"sb", 1, 29},         {"paca", 1, 30},       {"pacg", 1, 31},       {"dcpodp", 2, 0},
    {"sve2", 2, 1},        {"sveaes", 2, 2},      {"svepmull", 2, 3},    {"svebitperm", 2, 4},
    {"svesha3", 2, 5},     {"svesm4", 2, 6},      {"flagm2", 2, 7},      {"frint", 2, 8},
    {"svei8mm", 2, 9},     {"svef32mm", 2, 10},   {"svef64mm", 2, 11},   {"svebf16", 2, 12},
    {"i8mm", 2, 13},       {"bf16", 2, 14},       {"dgh", 2, 15},        {"rng", 2, 16},
    {"bti", 2, 17},        {"mte", 2, 18},        {"ecv", 2, 19},        {"afp", 2, 20},
    {"rpres", 2, 21},      {"mte3", 2, 22},       {"sme", 2, 23},        {"smei16i64", 2, 24},
    {"smef64f64", 2, 25},  {"smei8i32", 2, 26},   {"smef16f32", 2, 27},  {"smeb16f32", 2, 28},
    {"smef32f32", 2, 29},  {"smefa64", 2, 30},    {"wfxt", 2, 31},       {"ebf16", 2, 32},
    {"sveebf16", 2, 33},   {"cssc", 2, 34},       {"rprfm", 2, 35},      {"sve2p1", 2, 36},
    {"sme2", 2, 37},       {"sme2p1", 2, 38},     {"smei16i32", 2, 39},  {"smebi32i32", 2, 40},
    {"smeb16b16", 2, 41},  {"smef16f16", 2, 42},
};

// What ATOM_CPU_DISABLE=<group> clears: a feature and everything that needs it, as a kernel
// without the feature would report.
struct Group {
  const char* name;
  uint64_t hwcap, hwcap2;
};
constexpr uint64_t b(int i) { return uint64_t(1) << i; }
const uint64_t kSme2Bits = b(37) | b(38) | b(39) | b(40) | b(41) | b(42);
const uint64_t kSmeBits = b(23) | b(24) | b(25) | b(26) | b(27) | b(28) | b(29) | b(30) | kSme2Bits;
const uint64_t kSve2Bits = b(1) | b(2) | b(3) | b(4) | b(5) | b(6) | b(36);
const Group kGroups[] = {
    {"sme", 0, kSmeBits},
    {"sme2", 0, kSme2Bits},
    {"sve", b(22), kSve2Bits | b(9) | b(10) | b(11) | b(12) | b(33)},
    {"sve2", 0, kSve2Bits},
    {"i8mm", 0, b(13) | b(9)},
    {"dotprod", b(20), 0},
    {"bf16", 0, b(14) | b(12) | b(32) | b(33)},
    {"fp16", b(9) | b(10) | b(23), 0},
};

struct Mask {
  uint64_t hwcap = 0, hwcap2 = 0;
  std::vector<std::string> names, unknown;
};

Mask parse_mask(const std::string& list) {
  Mask out;
  size_t start = 0;
  while (start < list.size()) {
    size_t end = list.find(',', start);
    if (end == std::string::npos) end = list.size();
    std::string name = list.substr(start, end - start);
    if (!name.empty()) {
      bool found = false;
      for (const auto& g : kGroups)
        if (name == g.name) out.hwcap |= g.hwcap, out.hwcap2 |= g.hwcap2, found = true;
      (found ? out.names : out.unknown).push_back(name);
    }
    start = end + 1;
  }
  return out;
}

std::string valid_groups() {
  std::string s;
  for (const auto& g : kGroups) s += (s.empty() ? "" : ",") + std::string(g.name);
  return s;
}

// Filled by preinit() below, before any shared library's initialiser runs: ExecuTorch's
// libraries read the CPU's features (cpuinfo) while they initialise, before main.
Mask& mask() {
  static Mask m;
  return m;
}
const char* mask_source = "ATOM_CPU_DISABLE";

// .preinit_array: the executable's functions that run before every library initialiser (glibc
// passes argc, argv and envp; `environ` may not be set yet). --cpu-disable wins over the env.
void preinit(int argc, char** argv, char** envp) {
  std::string list;
  for (char** e = envp; e && *e; ++e)
    if (std::strncmp(*e, "ATOM_CPU_DISABLE=", 17) == 0) list = *e + 17;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) break;
    if (std::strcmp(argv[i], "--cpu-disable") == 0) list = argv[i + 1], mask_source = "--cpu-disable";
  }
  mask() = parse_mask(list);
}
__attribute__((section(".preinit_array"), used)) void (*const preinit_entry)(int, char**, char**) = preinit;

// A misspelt feature must not silently leave the suspect kernels on: a usage error (exit 2).
struct CheckMask {
  CheckMask() {
    if (!mask().unknown.empty()) {
      std::fprintf(stderr, "atom_runner: %s: unknown feature %s; valid: %s\n", mask_source,
                   mask().unknown[0].c_str(), valid_groups().c_str());
      std::exit(2);
    }
  }
} check_mask;

using AuxvFn = unsigned long (*)(unsigned long);

unsigned long real_auxval(unsigned long type) {
  static AuxvFn real = reinterpret_cast<AuxvFn>(dlsym(RTLD_NEXT, "getauxval"));
  return real ? real(type) : 0;
}

[[maybe_unused]] unsigned long masked_auxval(unsigned long type) {
  unsigned long v = real_auxval(type);
#if defined(__aarch64__)
  if (type == kAtHwcap) v &= ~mask().hwcap;
  if (type == kAtHwcap2) v &= ~mask().hwcap2;
#endif
  return v;
}

}  // namespace

#if defined(__aarch64__)
extern "C" unsigned long getauxval(unsigned long type) { return masked_auxval(type); }
extern "C" unsigned long __getauxval(unsigned long type) { return masked_auxval(type); }

// Every kai_run_matmul_* in the executorch 1.5.1 aarch64 wheel. All return void and take at
// most 9 integer/pointer arguments and 2 floats; AAPCS64 passes those in x0-x7 (+ stack) and
// v0-v1 independently, so one forwarding signature with spare integer slots fits them all.
#define ATOM_KAI_KERNELS                                     \
  X(matmul_clamp_f16_f16_f16p2vlx2b_1x16vl_sme2_dot)         \
  X(matmul_clamp_f16_f16_f16p2vlx2b_1x8vl_sme_mla)           \
  X(matmul_clamp_f16_f16p2vlx2_f16p2vlx2_2vlx2vl_sme2_mopa)  \
  X(matmul_clamp_f16_f16p2vlx2_f16p2vlx2b_2vlx2vl_sme_mopa)  \
  X(matmul_clamp_f32_f32_f32p2vlx1b_1x16vl_sme2_mla)         \
  X(matmul_clamp_f32_f32_f32p2vlx1b_1x8vl_sme_mla)           \
  X(matmul_clamp_f32_f32p2vlx1_f32p2vlx1b_2vlx2vl_sme_mopa)  \
  X(matmul_clamp_f32_f32p2vlx1_f32p2vlx1biasf32_sme2_mopa)   \
  X(matmul_clamp_f32_qai8dxp1vlx4_qsi4cxp4vlx4_1vlx4vl_sme_mopa)  \
  X(matmul_clamp_f32_qai8dxp1vlx4_qsi8cxp4vlx4_1vlx4vl_sme2_mopa) \
  X(matmul_clamp_f32_qai8dxp1vlx4_qsi8cxp4vlx4_1vlx4vl_sme_mopa)  \
  X(matmul_clamp_f32_qai8dxp1vlx8_qsi4cxp4vlx8_1vlx4vl_sme2_mopa) \
  X(matmul_clamp_f32_qai8dxp1x4_qsi4c32p4x4_1x4_neon_dotprod)     \
  X(matmul_clamp_f32_qai8dxp1x4_qsi4cxp4vlx4_1x4vl_sme2_sdot)     \
  X(matmul_clamp_f32_qai8dxp1x4_qsi4cxp4vlx4_1x4vl_sme_dot)       \
  X(matmul_clamp_f32_qai8dxp1x4_qsi4cxp4x4_1x4_neon_dotprod)      \
  X(matmul_clamp_f32_qai8dxp1x4_qsi8cxp4vlx4_1x4vl_sme2_dot)      \
  X(matmul_clamp_f32_qai8dxp1x4_qsi8cxp4vlx4_1x4vl_sme_dot)       \
  X(matmul_clamp_f32_qai8dxp1x4_qsi8cxp4x4_1x4_neon_dotprod)      \
  X(matmul_clamp_f32_qai8dxp1x8_qsi4c32p4x8_1x4x32_neon_dotprod)  \
  X(matmul_clamp_f32_qai8dxp1x8_qsi4cxp8x8_1x8x32_neon_dotprod)   \
  X(matmul_clamp_f32_qai8dxp1x8_qsi8cxp4x8_1x4_neon_dotprod)      \
  X(matmul_clamp_f32_qai8dxp4x4_qsi4c32p4x4_16x4_neon_dotprod)    \
  X(matmul_clamp_f32_qai8dxp4x4_qsi8cxp4x4_16x4_neon_dotprod)     \
  X(matmul_clamp_f32_qai8dxp4x8_qsi4c32p4x8_16x4x32_neon_i8mm)    \
  X(matmul_clamp_f32_qai8dxp4x8_qsi4cxp4x4_16x4x32_neon_dotprod)  \
  X(matmul_clamp_f32_qai8dxp4x8_qsi4cxp8x8_8x8x32_neon_i8mm)      \
  X(matmul_clamp_f32_qai8dxp4x8_qsi8cxp4x8_16x4_neon_i8mm)        \
  X(matmul_clamp_qai8_qai8_qsi8cxp2vlx4sb_1x16vl_sme2_dot)        \
  X(matmul_clamp_qai8_qai8p2vlx4_qsi8cxp2vlx4sb_2vlx2vl_sme_mopa) \
  X(matmul_clamp_qai8_qai8p2vlx4_qsi8cxpsb2vlx4_2vlx2vl_sme2_mopa)

namespace {
enum KaiIndex {
#define X(n) kKai_##n,
  ATOM_KAI_KERNELS
#undef X
      kKaiCount
};
const char* const kKaiNames[] = {
#define X(n) #n,
    ATOM_KAI_KERNELS
#undef X
};
std::atomic<uint64_t> kai_calls[kKaiCount];
using KaiFn = void (*)(uintptr_t, uintptr_t, uintptr_t, uintptr_t, uintptr_t, uintptr_t, uintptr_t, uintptr_t,
                       uintptr_t, uintptr_t, float, float);
}  // namespace

#define X(n)                                                                                                 \
  extern "C" void kai_run_##n(uintptr_t a0, uintptr_t a1, uintptr_t a2, uintptr_t a3, uintptr_t a4,          \
                              uintptr_t a5, uintptr_t a6, uintptr_t a7, uintptr_t a8, uintptr_t a9, float f0, \
                              float f1) {                                                                     \
    static KaiFn real = reinterpret_cast<KaiFn>(dlsym(RTLD_NEXT, "kai_run_" #n));                            \
    kai_calls[kKai_##n].fetch_add(1, std::memory_order_relaxed);                                             \
    real(a0, a1, a2, a3, a4, a5, a6, a7, a8, a9, f0, f1);                                                    \
  }
ATOM_KAI_KERNELS
#undef X
#endif  // __aarch64__

namespace atom {

namespace {

std::map<std::string, uint64_t> kernel_calls() {
  std::map<std::string, uint64_t> out;
#if defined(__aarch64__)
  for (int i = 0; i < kKaiCount; ++i) out[kKaiNames[i]] = kai_calls[i].load();
#endif
  return out;
}

Json kernels_between(const std::map<std::string, uint64_t>& before) {
  Json out = Json::object();
  for (const auto& [name, n] : kernel_calls()) {
    uint64_t d = n - before.at(name);
    if (d) out[name] = d;
  }
  return out;
}

Json names(uint64_t hwcap, uint64_t hwcap2) {
  Json out = Json::array();
  for (const auto& bit : kBits) {
    uint64_t word = bit.word == 1 ? hwcap : hwcap2;
    if (word & b(bit.bit)) out.push_back(bit.name);
  }
  return out;
}

std::string hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// The first processor's identity lines (every core of a big.LITTLE phone lists its own part).
Json proc_cpuinfo() {
  static const char* kKeys[] = {"Features", "CPU implementer", "CPU architecture", "CPU variant", "CPU part",
                                "CPU revision", "model name", "flags", "Hardware"};
  std::ifstream f("/proc/cpuinfo");
  std::map<std::string, std::string> seen;
  std::string line;
  while (std::getline(f, line)) {
    size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string key = line.substr(0, line.find_last_not_of(" \t", colon - 1) + 1);
    std::string value = colon + 2 <= line.size() ? line.substr(colon + 2) : "";
    for (const char* k : kKeys)
      if (key == k && !seen.count(key)) seen[key] = value;
  }
  return seen;
}

// Vector lengths in bytes, read with RDVL/RDSVL (encoded by hand: the toolchain's assembler
// predates SME). Only executed where the real hwcaps say the instruction exists.
void add_vector_lengths(Json& cpu, uint64_t hwcap, uint64_t hwcap2) {
#if defined(__aarch64__)
  if (hwcap & b(22)) {
    uint64_t vl;
    asm volatile(".inst 0x04bf5020\n mov %0, x0" : "=r"(vl) : : "x0");  // rdvl x0, #1
    cpu["sve_vl_bytes"] = vl;
  }
  if (hwcap2 & b(23)) {
    uint64_t svl;
    asm volatile(".inst 0x04bf5820\n mov %0, x0" : "=r"(svl) : : "x0");  // rdsvl x0, #1
    cpu["sme_svl_bytes"] = svl;
  }
#endif
}

// Run each module once on fixed inputs and record which KleidiAI kernels each one called.
Json kernel_probe(const std::string& artifacts) {
  Runner r(artifacts);
  const Manifest& m = r.manifest();
  Json out = Json::object();
  auto before = kernel_calls();
  std::vector<float> prefix = r.encode(std::vector<float>(m.clip_numel(), 0.25f));
  out["video_encoder"] = kernels_between(before);
  before = kernel_calls();
  r.decode({}, prefix, 1, 2);
  out["decoder_greedy"] = kernels_between(before);
  before = kernel_calls();
  r.decode({}, prefix, std::min(4, m.max_batch), 2);
  out["decoder_beam"] = kernels_between(before);
  before = kernel_calls();
  r.embed({"a red car"});
  out["minilm"] = kernels_between(before);
  return out;
}

}  // namespace

std::string device_info_json(const std::string& artifacts) {
  const uint64_t hwcap = real_auxval(kAtHwcap), hwcap2 = real_auxval(kAtHwcap2);
  const Mask& mk = mask();
#if defined(__aarch64__)
  const bool kai = true;
#else
  const bool kai = false;
#endif
  // The build record is the JSON embedded in the binary (atom_build_info above), parsed back.
  Json build = parse_json(std::string(atom_build_info).substr(std::strlen("ATOM_BUILD_INFO:")), 2, "build info");
  Json cpu = {{"hwcap", hex(hwcap)}, {"hwcap2", hex(hwcap2)}};
  if (kai) {
    cpu["features"] = names(hwcap, hwcap2);
    cpu["disabled"] = mk.names;
    cpu["runtime_features"] = names(hwcap & ~mk.hwcap, hwcap2 & ~mk.hwcap2);
    add_vector_lengths(cpu, hwcap, hwcap2);
  }
  cpu["proc_cpuinfo"] = proc_cpuinfo();
  Json kernels = artifacts.empty() || !kai ? Json(nullptr) : kernel_probe(artifacts);
  return json_dump({{"build", build}, {"cpu", cpu}, {"kernels", kernels}});
}

}  // namespace atom
