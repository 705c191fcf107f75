// One ExecuTorch program (.pte, mmap-loaded) with its methods loaded once.
// Every Error/Result is checked; failures throw EtError naming module, method and code.
#pragma once
#include <executorch/extension/module/module.h>
#include <executorch/extension/tensor/tensor.h>

#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace atom {

struct EtError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct FloatOut {
  std::vector<int> shape;
  std::vector<float> data;
};

class EtModule {
 public:
  EtModule(std::string name, const std::string& path, const std::vector<std::string>& methods);
  // Runs a method; returns the first output, copied (outputs live in method memory).
  FloatOut run(const std::string& method, std::vector<executorch::runtime::EValue> inputs);
  // A method input's sizes as the program declares them (a dynamic axis: its upper bound).
  std::vector<int64_t> input_sizes(const std::string& method, size_t index) const;
  const std::string& name() const { return name_; }
  double load_seconds() const { return load_seconds_; }
  // How many times this process has loaded each module, by name: a resident runner must
  // show 1 per module however many tasks it served.
  static std::map<std::string, int> loads();

 private:
  std::string name_, path_;
  std::unique_ptr<executorch::extension::module::Module> module_;
  double load_seconds_ = 0;
};

}  // namespace atom
