#include "LibTorch.h"

#include <ATen/Version.h>
#include <dlfcn.h>
#include <torch/version.h>

#include <regex>

namespace {

// One setting of the "Build settings: A=x, B=y, ..." line of at::show_config(), or "" when absent.
std::string BuildSetting(const std::string& name) {
  static const std::string config = at::show_config();
  const std::regex pattern("[ ,:]" + name + "=([^,\\n]*)");
  std::smatch match;
  return std::regex_search(config, match, pattern) ? match[1].str() : std::string();
}

}  // namespace

std::string LibTorch::RuntimeVersion() { return BuildSetting("TORCH_VERSION"); }

std::string LibTorch::HeadersVersion() { return TORCH_VERSION; }

std::string LibTorch::LibraryPath() {
  Dl_info info{};
  // at::show_config is defined in libtorch_cpu: the address of the definition names the file.
  if (dladdr(reinterpret_cast<void*>(&at::show_config), &info) == 0 || info.dli_fname == nullptr) return "";
  return info.dli_fname;
}

bool LibTorch::BuiltWithCuda() {
  const std::string setting = BuildSetting("USE_CUDA");
  return !setting.empty() && setting != "0" && setting != "OFF";
}
