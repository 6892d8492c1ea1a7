// Registration of the plain-loop shape, indexing, data-movement and resampling kernels
// (tensor_*.cc). Every kernel handles all opset variants of its operator itself (reading
// node().opset), so each operator is registered once, from opset 1.
#pragma once

#include "gpuhive/kernel.h"

namespace gpuhive::cpu {

// Registers every tensor_*.cc kernel: Shape, Size, Constant, ConstantOfShape, Range, EyeLike,
// Identity, Dropout, Reshape, Flatten, Squeeze, Unsqueeze, Transpose, DepthToSpace, SpaceToDepth,
// Concat, Split, Slice, Expand, Tile, Pad, Gather, GatherElements, GatherND, Scatter,
// ScatterElements, ScatterND, OneHot, NonZero, Compress, Trilu, ReverseSequence, Unique, Resize,
// Upsample, NonMaxSuppression, GridSample, RoiAlign.
void RegisterTensorKernels(KernelRegistry& registry);

// Per-file parts of RegisterTensorKernels.
void RegisterTensorShapeKernels(KernelRegistry& registry);     // tensor_shape.cc
void RegisterTensorMoveKernels(KernelRegistry& registry);      // tensor_move.cc
void RegisterTensorIndexKernels(KernelRegistry& registry);     // tensor_index.cc
void RegisterTensorResizeKernels(KernelRegistry& registry);    // tensor_resize.cc
void RegisterTensorDetectionKernels(KernelRegistry& registry); // tensor_nms.cc
void RegisterTensorUniqueKernels(KernelRegistry& registry);    // tensor_unique.cc
void RegisterTensorGridSampleKernels(KernelRegistry& registry); // tensor_gridsample.cc
void RegisterTensorRoiAlignKernels(KernelRegistry& registry);   // tensor_roialign.cc

}  // namespace gpuhive::cpu
