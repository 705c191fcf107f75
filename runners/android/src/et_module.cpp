#include "et_module.h"

#include <fstream>
#include <mutex>

#include "stopwatch.h"

namespace atom {

using executorch::extension::module::Module;
using executorch::runtime::Error;

static std::mutex loads_mutex;  // a Runner may be built on any thread
static std::map<std::string, int> load_counts;

std::map<std::string, int> EtModule::loads() {
  std::lock_guard<std::mutex> lock(loads_mutex);
  return load_counts;
}

static std::string code(Error e) { return std::to_string(int(e)); }

// A .pte is a flatbuffer with the file identifier "ET12" at bytes 4..8 (program.fbs);
// checked here as the Python runner checks it, for a clearer error than a loader code.
static void check_program_header(const std::string& name, const std::string& path) {
  char head[8] = {};
  std::ifstream f(path, std::ios::binary);
  if (!f.read(head, sizeof head) || std::string(head + 4, 4) != "ET12")
    throw EtError("module " + name + " (" + path + "): not an ExecuTorch program (no ET12 header)");
}

EtModule::EtModule(std::string name, const std::string& path, const std::vector<std::string>& methods)
    : name_(std::move(name)), path_(path) {
  auto t0 = Clock::now();
  check_program_header(name_, path);
  module_ = std::make_unique<Module>(path, Module::LoadMode::Mmap);
  Error err = module_->load();
  if (err != Error::Ok)
    throw EtError("module " + name_ + " (" + path + "): load failed, ExecuTorch error " + code(err));
  for (const auto& m : methods) {
    err = module_->load_method(m);
    if (err != Error::Ok)
      throw EtError("module " + name_ + " method " + m + ": load_method failed, ExecuTorch error " + code(err));
  }
  load_seconds_ = seconds_since(t0);
  std::lock_guard<std::mutex> lock(loads_mutex);
  ++load_counts[name_];
}

FloatOut EtModule::run(const std::string& method, std::vector<executorch::runtime::EValue> inputs) {
  auto result = module_->execute(method, inputs);
  if (!result.ok())
    throw EtError("module " + name_ + " method " + method + ": execute failed, ExecuTorch error " +
                  code(result.error()));
  auto& outs = result.get();
  if (outs.empty() || !outs[0].isTensor())
    throw EtError("module " + name_ + " method " + method + ": first output is not a tensor");
  const auto& t = outs[0].toTensor();
  if (t.scalar_type() != executorch::aten::ScalarType::Float)
    throw EtError("module " + name_ + " method " + method + ": output is not float32");
  FloatOut out;
  for (auto s : t.sizes()) out.shape.push_back(int(s));
  const float* p = t.const_data_ptr<float>();
  out.data.assign(p, p + t.numel());
  return out;
}

std::vector<int64_t> EtModule::input_sizes(const std::string& method, size_t index) const {
  auto meta = module_->method_meta(method);
  if (!meta.ok())
    throw EtError("module " + name_ + " method " + method + ": no method metadata, ExecuTorch error " + code(meta.error()));
  auto tensor = meta->input_tensor_meta(index);
  if (!tensor.ok())
    throw EtError("module " + name_ + " method " + method + ": no tensor input " + std::to_string(index) +
                  " (an artifact from an older kit? re-export)");
  auto sizes = tensor->sizes();
  return std::vector<int64_t>(sizes.begin(), sizes.end());
}

}  // namespace atom
