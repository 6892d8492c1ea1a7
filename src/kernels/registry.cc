#include <algorithm>

#include "gpuhive/kernel.h"

namespace gpuhive {
namespace {
constexpr std::string_view kDataDependentPrefix = "data-dependent shape: ";
std::string Key(const std::string& domain, const std::string& op) {
  std::string d = domain == "ai.onnx" ? "" : domain;
  return d + '\x1f' + op;
}
}  // namespace

Status DataDependentShape(const ir::Node& node, size_t input) {
  return FailedPrecondition("{}{} needs the value of input {} to know its output shape",
                            kDataDependentPrefix, node.Describe(), input);
}

bool IsDataDependentShape(const Status& status) {
  return status.code() == StatusCode::kFailedPrecondition &&
         status.message().rfind(kDataDependentPrefix, 0) == 0;
}

void KernelRegistry::Register(const std::string& domain, const std::string& op_type,
                              KernelFactory factory, int since_version) {
  auto& v = entries_[Key(domain, op_type)];
  v.push_back(Entry{since_version, std::move(factory)});
  std::sort(v.begin(), v.end(),
            [](const Entry& a, const Entry& b) { return a.since_version > b.since_version; });
}

const KernelFactory* KernelRegistry::Find(const std::string& domain, const std::string& op_type,
                                          int opset) const {
  auto it = entries_.find(Key(domain, op_type));
  if (it == entries_.end()) return nullptr;
  for (const Entry& e : it->second) {
    if (opset == 0 || e.since_version <= opset) return &e.factory;
  }
  return nullptr;
}

StatusOr<std::unique_ptr<Kernel>> KernelRegistry::Create(const ir::Node& node) const {
  const KernelFactory* f = Find(node.domain, node.op_type, node.opset);
  if (f == nullptr) {
    return Unimplemented("unsupported operator {} (opset {}) at node '{}'",
                         node.domain.empty() ? node.op_type : node.domain + "." + node.op_type,
                         node.opset, node.name);
  }
  return (*f)(node);
}

std::vector<std::string> KernelRegistry::OpTypes() const {
  std::vector<std::string> out;
  for (const auto& [key, entries] : entries_) {
    auto sep = key.find('\x1f');
    std::string domain = key.substr(0, sep), op = key.substr(sep + 1);
    out.push_back(domain.empty() ? op : domain + "." + op);
  }
  return out;
}

}  // namespace gpuhive
