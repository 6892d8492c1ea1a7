// Graph IR: what the ONNX importer produces, the optimization passes rewrite, and the runtime plans.
// Ownership: a Graph owns its Nodes and Values (unique_ptr); Node/Value pointers are non-owning and
// stay valid until the graph removes them. Not thread safe while being mutated; a finished graph
// is read concurrently by compiled plans.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "gpuhive/status.h"
#include "gpuhive/tensor.h"

namespace gpuhive::ir {

class Graph;
struct Node;

// One dimension of a declared shape: a fixed size, or unknown (-1) with an optional symbol ("N").
struct Dim {
  int64_t value = -1;
  std::string symbol;
  bool is_known() const { return value >= 0; }
};

// Constant tensor data (initializers, Constant nodes, folded values). Immutable once built; shared
// between the graph and anything that reads it. Data lives on the host.
using ConstTensor = std::shared_ptr<const Tensor>;

struct Value {
  std::string name;
  DataType dtype = DataType::kUndefined;
  // Declared or inferred shape; empty optional when the rank is unknown.
  std::optional<std::vector<Dim>> shape;
  Node* producer = nullptr;  // null for graph inputs, initializers and outer-scope refs
  int producer_output = -1;
  std::vector<Node*> consumers;  // a node appears once per input slot that uses this value
  ConstTensor constant;          // set for initializers and folded constants
  bool is_graph_input = false;
  bool is_graph_output = false;
  // Inside a subgraph: a value defined in an enclosing graph and referenced by name here.
  bool is_outer_ref = false;

  bool is_constant() const { return constant != nullptr; }
};

class Attribute {
 public:
  enum class Type { kFloat, kInt, kString, kTensor, kGraph, kFloats, kInts, kStrings };
  using Storage = std::variant<float, int64_t, std::string, ConstTensor, std::shared_ptr<Graph>,
                               std::vector<float>, std::vector<int64_t>, std::vector<std::string>>;

  Attribute() = default;
  explicit Attribute(Storage s) : storage_(std::move(s)) {}
  Type type() const { return static_cast<Type>(storage_.index()); }
  const Storage& storage() const { return storage_; }
  template <typename T>
  const T* get_if() const { return std::get_if<T>(&storage_); }

 private:
  Storage storage_;
};

struct Node {
  std::string name;  // may be empty in ONNX; the importer fills "<op_type>_<index>"
  std::string op_type;
  std::string domain;  // "" for the default ONNX domain ("ai.onnx"), "gpuhive" for our own ops
  int opset = 0;       // opset version of `domain` the model imports
  std::vector<Value*> inputs;   // nullptr for an omitted optional input
  std::vector<Value*> outputs;  // nullptr for an omitted optional output
  // Values from this node's graph (or further out) that its subgraphs (If/Loop/Scan bodies)
  // reference by name. The runtime binds them when it runs the subgraph.
  std::vector<Value*> implicit_inputs;
  std::map<std::string, Attribute> attrs;

  bool has_attr(const std::string& n) const { return attrs.count(n) != 0; }
  // Typed attribute access with a default; a present attribute of the wrong type is an error.
  StatusOr<int64_t> GetInt(const std::string& n, std::optional<int64_t> def = std::nullopt) const;
  StatusOr<float> GetFloat(const std::string& n, std::optional<float> def = std::nullopt) const;
  StatusOr<std::string> GetString(const std::string& n,
                                  std::optional<std::string> def = std::nullopt) const;
  StatusOr<std::vector<int64_t>> GetInts(
      const std::string& n, std::optional<std::vector<int64_t>> def = std::nullopt) const;
  StatusOr<std::vector<float>> GetFloats(
      const std::string& n, std::optional<std::vector<float>> def = std::nullopt) const;
  StatusOr<std::vector<std::string>> GetStrings(
      const std::string& n, std::optional<std::vector<std::string>> def = std::nullopt) const;
  StatusOr<ConstTensor> GetTensor(const std::string& n) const;
  StatusOr<std::shared_ptr<Graph>> GetGraph(const std::string& n) const;

  // Input i if present, else nullptr (also when i is out of range).
  Value* input(size_t i) const { return i < inputs.size() ? inputs[i] : nullptr; }
  Value* output(size_t i) const { return i < outputs.size() ? outputs[i] : nullptr; }
  // "Conv 'conv1'" for error messages.
  std::string Describe() const;
};

class Graph {
 public:
  Graph() = default;
  Graph(const Graph&) = delete;
  Graph& operator=(const Graph&) = delete;

  std::string name;

  // Creates a value owned by this graph. Names must be unique within the graph (not checked here;
  // the importer and passes keep them unique, use UniqueName for new ones).
  Value* AddValue(std::string name, DataType dtype = DataType::kUndefined);
  // Creates a node and wires producer/consumer links for the given inputs and outputs.
  Node* AddNode(std::string op_type, std::vector<Value*> inputs, std::vector<Value*> outputs,
                std::string name = "", std::string domain = "");
  // Removes a node and unlinks it from its inputs' consumer lists and its outputs' producer.
  void RemoveNode(Node* node);
  // Points every consumer of `from` (and graph outputs) at `to`.
  void ReplaceAllUses(Value* from, Value* to);
  // Rewires one input slot of a node, keeping consumer lists right.
  void SetNodeInput(Node* node, size_t slot, Value* value);
  // Removes values that have no producer, no consumer and are not inputs/outputs/outer refs.
  void RemoveUnusedValues();
  // Orders nodes so each comes after the producers of its inputs. Error if there is a cycle.
  Status TopologicalSort();

  Value* FindValue(const std::string& name) const;  // nullptr if absent
  std::string UniqueName(const std::string& base);

  const std::vector<std::unique_ptr<Node>>& nodes() const { return nodes_; }
  std::vector<Value*>& inputs() { return inputs_; }
  const std::vector<Value*>& inputs() const { return inputs_; }
  std::vector<Value*>& outputs() { return outputs_; }
  const std::vector<Value*>& outputs() const { return outputs_; }
  // Values created for names this graph uses but an enclosing graph defines.
  std::vector<Value*>& outer_refs() { return outer_refs_; }
  const std::vector<Value*>& outer_refs() const { return outer_refs_; }
  const std::vector<std::unique_ptr<Value>>& values() const { return values_; }

 private:
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<std::unique_ptr<Value>> values_;
  std::map<std::string, Value*> by_name_;
  std::vector<Value*> inputs_, outputs_, outer_refs_;
  int64_t unique_counter_ = 0;
};

struct Model {
  std::shared_ptr<Graph> graph;
  std::map<std::string, int> opsets;  // domain -> version ("" is the default domain)
  int64_t ir_version = 0;
  std::string producer_name;
  std::map<std::string, std::string> metadata;
};

}  // namespace gpuhive::ir
