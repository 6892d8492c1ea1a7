// A stand-in execution plugin for execution_test: its backend compiles nothing (kUnimplemented,
// naming itself), so a test can tell it was loaded and registered. Built twice: as is, and with
// GPUHIVE_TEST_PLUGIN_BAD_ABI (an ABI of another build), and once more with
// GPUHIVE_TEST_PLUGIN_NO_BACKEND (a plugin that cannot serve on this machine).
#include "gpuhive/execution.h"

namespace {

class TestBackend final : public gpuhive::ExecutionBackend {
 public:
  std::string_view name() const override { return "test-plugin"; }
  gpuhive::StatusOr<std::unique_ptr<gpuhive::Executable>> Compile(std::unique_ptr<gpuhive::ir::Model>,
                                                                   const gpuhive::CompileOptions&,
                                                                   gpuhive::ComputeDevice&) override {
    return gpuhive::Unimplemented("compiled by the test plugin");
  }
};

gpuhive::ExecutionBackend* Backend(std::string* error) {
#ifdef GPUHIVE_TEST_PLUGIN_NO_BACKEND
  *error = "the test plugin has no device here";
  return nullptr;
#else
  (void)error;
  static TestBackend backend;
  return &backend;
#endif
}

gpuhive::ExecutionPluginAbi Abi() {
  gpuhive::ExecutionPluginAbi abi = gpuhive::CurrentExecutionPluginAbi();
#ifdef GPUHIVE_TEST_PLUGIN_BAD_ABI
  abi.tensor += 8;
#endif
  return abi;
}

}  // namespace

extern "C" __attribute__((visibility("default"))) const gpuhive::ExecutionPluginInfo* gpuhive_execution_plugin_v1() {
  static const gpuhive::ExecutionPluginInfo info{Abi(), gpuhive::DeviceType::kSim, "test plugin", &Backend, nullptr};
  return &info;
}
