// The inputs of Triton's model_warmup samples (config.pbtxt), built once for the two users: the
// engine runs them before a model reports READY, and precision int8 may calibrate on them.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "gpuhive/residency/model_config.h"
#include "gpuhive/tensor.h"

namespace gpuhive::residency {

struct WarmupInput {
  std::string name;
  Tensor tensor;
};

// The tensors of one model_warmup entry, in the config's input order (an optional input without a
// sample is left out), with the batch dim when max_batch_size > 0: zeros; random values when
// random_data (floats in [0, 1), integers 0 or 1: valid indices and flags), drawn from `rng`; or
// the bytes of input_data_file, a plain file name in <model_dir>/warmup/. Errors: kInvalidArgument
// (batch_size outside 1..max_batch_size, a required input without a sample, a dtype that differs
// from the input's, dims that are not fixed, a file name with a path, a file of the wrong size),
// kNotFound (no such file). Messages name the warm-up and the input.
StatusOr<std::vector<WarmupInput>> WarmupInputs(const ModelConfig& config, const WarmupConfig& warmup,
                                                const std::string& model_dir, std::mt19937* rng);

// True when every input of the warm-up that has a sample reads it from input_data_file: data the
// user chose, not zeros or random values (what calibration needs).
bool WarmupHasDataFiles(const WarmupConfig& warmup);

}  // namespace gpuhive::residency
