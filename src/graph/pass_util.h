// Internal helpers shared by the optimization passes.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "gpuhive/ir.h"
#include "gpuhive/status.h"

namespace gpuhive::pass_detail {

// Calls fn on `graph` and, depth first, on every subgraph held in a node attribute.
Status ForEachGraph(ir::Graph& graph, const std::function<Status(ir::Graph&)>& fn);

inline bool IsOp(const ir::Node* n, const char* op) { return n && n->domain.empty() && n->op_type == op; }

// The only consumer of v, when v has exactly one use and is not a graph output.
ir::Node* SoleConsumer(const ir::Value* v);
// Number of uses of v (node input slots) plus one if it is a graph output.
size_t UseCount(const ir::Value* v);

// Fully static shape of a value (declared or constant), if known.
std::optional<Shape> StaticShape(const ir::Value* v);
// A constant with exactly one element, converted to float.
std::optional<float> ConstScalar(const ir::Value* v);
// True when `v` has one element and equals `target` within a relative tolerance.
bool IsConstNear(const ir::Value* v, float target, float rel_tol = 1e-3f);

// Same declared rank and every dim equal (known values, or equal non-empty symbols).
bool SameShape(const ir::Value* a, const ir::Value* b);
// `small` broadcasts into `big` without enlarging it (numpy rules, compared from the right).
bool BroadcastsInto(const ir::Value* small, const ir::Value* big);
// Dtype is known float32.
bool IsFloat32(const ir::Value* v);

// Makes `out` (the output of single-input pass-through `node`) the value computed in its place
// and removes the node. Keeps graph output names: when `out` is a graph output the producer of
// `in` writes `out` directly, if that is possible. Returns false when nothing was changed.
bool BypassNode(ir::Graph& graph, ir::Node* node, ir::Value* in, ir::Value* out);

// Set (replace) an attribute. The Attribute is built inside pass_util.cc: GCC 12 with sanitizers
// reports a false maybe-uninitialized when the std::variant temporary is moved at the call site.
void SetAttr(ir::Node* node, const std::string& name, float value);
void SetAttr(ir::Node* node, const std::string& name, const std::vector<std::string>& value);

// Adds a constant value with a unique name derived from `base`.
ir::Value* AddConstant(ir::Graph& graph, const std::string& base, Tensor t);

}  // namespace gpuhive::pass_detail
