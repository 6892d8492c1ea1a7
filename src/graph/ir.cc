#include "gpuhive/ir.h"

#include <algorithm>
#include <set>

namespace gpuhive::ir {
namespace {
template <typename T>
StatusOr<T> GetAttr(const Node& node, const std::string& n, const std::optional<T>& def,
                    const char* type_name) {
  auto it = node.attrs.find(n);
  if (it == node.attrs.end()) {
    if (def) return *def;
    return InvalidArgument("{}: required attribute '{}' is missing", node.Describe(), n);
  }
  if (const T* v = it->second.get_if<T>()) return *v;
  return InvalidArgument("{}: attribute '{}' is not of type {}", node.Describe(), n, type_name);
}
}  // namespace

StatusOr<int64_t> Node::GetInt(const std::string& n, std::optional<int64_t> def) const {
  return GetAttr<int64_t>(*this, n, def, "int");
}
StatusOr<float> Node::GetFloat(const std::string& n, std::optional<float> def) const {
  return GetAttr<float>(*this, n, def, "float");
}
StatusOr<std::string> Node::GetString(const std::string& n, std::optional<std::string> def) const {
  return GetAttr<std::string>(*this, n, def, "string");
}
StatusOr<std::vector<int64_t>> Node::GetInts(const std::string& n,
                                             std::optional<std::vector<int64_t>> def) const {
  return GetAttr<std::vector<int64_t>>(*this, n, def, "ints");
}
StatusOr<std::vector<float>> Node::GetFloats(const std::string& n,
                                             std::optional<std::vector<float>> def) const {
  return GetAttr<std::vector<float>>(*this, n, def, "floats");
}
StatusOr<std::vector<std::string>> Node::GetStrings(
    const std::string& n, std::optional<std::vector<std::string>> def) const {
  return GetAttr<std::vector<std::string>>(*this, n, def, "strings");
}
StatusOr<ConstTensor> Node::GetTensor(const std::string& n) const {
  return GetAttr<ConstTensor>(*this, n, std::nullopt, "tensor");
}
StatusOr<std::shared_ptr<Graph>> Node::GetGraph(const std::string& n) const {
  return GetAttr<std::shared_ptr<Graph>>(*this, n, std::nullopt, "graph");
}

std::string Node::Describe() const {
  std::string op = domain.empty() ? op_type : domain + "." + op_type;
  return op + " '" + name + "'";
}

Value* Graph::AddValue(std::string value_name, DataType dtype) {
  auto v = std::make_unique<Value>();
  v->name = std::move(value_name);
  v->dtype = dtype;
  Value* raw = v.get();
  by_name_[raw->name] = raw;
  values_.push_back(std::move(v));
  return raw;
}

Node* Graph::AddNode(std::string op_type, std::vector<Value*> in, std::vector<Value*> out,
                     std::string node_name, std::string domain) {
  auto n = std::make_unique<Node>();
  n->op_type = std::move(op_type);
  n->domain = std::move(domain);
  n->name = node_name.empty() ? UniqueName(n->op_type) : std::move(node_name);
  n->inputs = std::move(in);
  n->outputs = std::move(out);
  Node* raw = n.get();
  for (Value* v : raw->inputs) {
    if (v) v->consumers.push_back(raw);
  }
  for (size_t i = 0; i < raw->outputs.size(); ++i) {
    if (Value* v = raw->outputs[i]) {
      v->producer = raw;
      v->producer_output = static_cast<int>(i);
    }
  }
  nodes_.push_back(std::move(n));
  return raw;
}

void Graph::RemoveNode(Node* node) {
  for (Value* v : node->inputs) {
    if (!v) continue;
    auto it = std::find(v->consumers.begin(), v->consumers.end(), node);
    if (it != v->consumers.end()) v->consumers.erase(it);
  }
  for (Value* v : node->implicit_inputs) {
    if (!v) continue;
    auto it = std::find(v->consumers.begin(), v->consumers.end(), node);
    if (it != v->consumers.end()) v->consumers.erase(it);
  }
  for (Value* v : node->outputs) {
    if (v && v->producer == node) {
      v->producer = nullptr;
      v->producer_output = -1;
    }
  }
  nodes_.erase(std::remove_if(nodes_.begin(), nodes_.end(),
                              [node](const std::unique_ptr<Node>& n) { return n.get() == node; }),
               nodes_.end());
}

void Graph::SetNodeInput(Node* node, size_t slot, Value* value) {
  if (slot >= node->inputs.size()) node->inputs.resize(slot + 1, nullptr);
  if (Value* old = node->inputs[slot]) {
    auto it = std::find(old->consumers.begin(), old->consumers.end(), node);
    if (it != old->consumers.end()) old->consumers.erase(it);
  }
  node->inputs[slot] = value;
  if (value) value->consumers.push_back(node);
}

void Graph::ReplaceAllUses(Value* from, Value* to) {
  if (from == to) return;
  std::vector<Node*> consumers = from->consumers;
  for (Node* n : consumers) {
    for (auto& in : n->inputs) {
      if (in == from) {
        in = to;
        to->consumers.push_back(n);
      }
    }
    for (auto& in : n->implicit_inputs) {
      if (in == from) {
        in = to;
        to->consumers.push_back(n);
      }
    }
  }
  from->consumers.clear();
  for (auto& out : outputs_) {
    if (out == from) {
      out = to;
      to->is_graph_output = true;
      from->is_graph_output = false;
    }
  }
}

void Graph::RemoveUnusedValues() {
  std::set<Value*> keep(inputs_.begin(), inputs_.end());
  keep.insert(outputs_.begin(), outputs_.end());
  keep.insert(outer_refs_.begin(), outer_refs_.end());
  std::vector<std::unique_ptr<Value>> kept;
  for (auto& v : values_) {
    if (keep.count(v.get()) || v->producer || !v->consumers.empty()) {
      kept.push_back(std::move(v));
    } else {
      by_name_.erase(v->name);
    }
  }
  values_ = std::move(kept);
}

Status Graph::TopologicalSort() {
  std::map<Node*, size_t> pending;
  std::map<Node*, std::vector<Node*>> users;
  for (auto& n : nodes_) {
    std::set<Node*> deps;
    auto add = [&](Value* v) {
      if (v && v->producer && v->producer != n.get()) deps.insert(v->producer);
    };
    for (Value* v : n->inputs) add(v);
    for (Value* v : n->implicit_inputs) add(v);
    pending[n.get()] = deps.size();
    for (Node* d : deps) users[d].push_back(n.get());
  }
  std::vector<Node*> ready;
  for (auto& n : nodes_) {
    if (pending[n.get()] == 0) ready.push_back(n.get());
  }
  std::vector<Node*> order;
  // Keep the original relative order among ready nodes: deterministic plans.
  std::map<Node*, size_t> original;
  for (size_t i = 0; i < nodes_.size(); ++i) original[nodes_[i].get()] = i;
  auto cmp = [&](Node* a, Node* b) { return original[a] > original[b]; };
  std::make_heap(ready.begin(), ready.end(), cmp);
  while (!ready.empty()) {
    std::pop_heap(ready.begin(), ready.end(), cmp);
    Node* n = ready.back();
    ready.pop_back();
    order.push_back(n);
    for (Node* u : users[n]) {
      if (--pending[u] == 0) {
        ready.push_back(u);
        std::push_heap(ready.begin(), ready.end(), cmp);
      }
    }
  }
  if (order.size() != nodes_.size()) {
    return InvalidArgument("graph '{}' has a cycle ({} of {} nodes orderable)", name, order.size(),
                           nodes_.size());
  }
  std::map<Node*, std::unique_ptr<Node>> owned;
  for (auto& n : nodes_) owned[n.get()] = std::move(n);
  nodes_.clear();
  for (Node* n : order) nodes_.push_back(std::move(owned[n]));
  return Status::OK();
}

Value* Graph::FindValue(const std::string& value_name) const {
  auto it = by_name_.find(value_name);
  return it == by_name_.end() ? nullptr : it->second;
}

std::string Graph::UniqueName(const std::string& base) {
  std::string n;
  do {
    n = base + "__gh" + std::to_string(unique_counter_++);
  } while (by_name_.count(n));
  return n;
}

}  // namespace gpuhive::ir
