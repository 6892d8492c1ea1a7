// Synthetic ONNX models of a chosen size, for the residency benchmark and tests: a chain of
// MatMul(+Add bias)(+Relu) layers with constant weights, input "x" [batch, dim] (batch symbolic "N"),
// output "y" [batch, dim].
#pragma once

#include <cstdint>
#include <string>

namespace gpuhive::residency {

struct SyntheticModelSpec {
  int dim = 64;
  int layers = 2;
  uint32_t seed = 1;
  // Weight values are uniform in +-scale (small keeps activations bounded over many layers).
  float scale = 0.05f;
  // Each layer adds a bias vector [dim] after its MatMul (an Add whose constant operand is read
  // when the step runs: what tests of weight arrival need).
  bool bias = false;
};

// Serialized ONNX ModelProto (opset 13). Weights take layers * dim * dim * 4 bytes.
std::string MakeMatMulChainOnnx(const SyntheticModelSpec& spec);

// A spec of about `bytes` of weights: the largest dim <= max_dim (a multiple of 16) and as many
// layers as needed.
SyntheticModelSpec SpecForBytes(uint64_t bytes, uint32_t seed, int max_dim = 4096);

}  // namespace gpuhive::residency
