// NonMaxSuppression (opsets 10, 11): greedy per-class suppression by IoU, ONNX Runtime's ordering
// (score descending, lower box index first on ties). The output row count depends on the values,
// so the kernel is prepared at run time.
#include <queue>

#include "kernels/cpu/loops/tensor_register.h"
#include "kernels/cpu/loops/tensor_util.h"

namespace gpuhive::cpu {
namespace {

using namespace tensor;  // NOLINT: private helpers of this kernel family

struct Box {
  float y1, x1, y2, x2;  // y1 <= y2, x1 <= x2
};

class NonMaxSuppressionKernel final : public Kernel {
 public:
  Status Prepare(PrepareContext& ctx) override {
    const ir::Node& n = ctx.node();
    const Shape& boxes = ctx.input_shape(0);
    const Shape& scores = ctx.input_shape(1);
    if (boxes.size() != 3 || boxes[2] != 4 || scores.size() != 3 || scores[0] != boxes[0] ||
        scores[2] != boxes[1]) {
      return InvalidArgument("{}: boxes must be [B,N,4] and scores [B,C,N], got {} and {}",
                             n.Describe(), ShapeToString(boxes), ShapeToString(scores));
    }
    if (ctx.input_dtype(0) != DataType::kFloat32 || ctx.input_dtype(1) != DataType::kFloat32) {
      return InvalidArgument("{}: boxes and scores must be float", n.Describe());
    }
    ASSIGN_OR_RETURN(center_point_box_, n.GetInt("center_point_box", 0));
    for (size_t i = 0; i < std::min<size_t>(ctx.num_inputs(), 5); ++i) {
      if (ctx.has_input(i) && ctx.input_value(i) == nullptr) return DataDependentShape(n, i);
    }
    std::vector<TensorView> views;
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      views.push_back(ctx.has_input(i) ? ctx.input_value(i)->view() : TensorView{});
    }
    ASSIGN_OR_RETURN(selected_, Select(views, ctx.num_inputs()));
    ctx.SetOutput(0, DataType::kInt64, {static_cast<int64_t>(selected_.size() / 3), 3});
    return Status::OK();
  }

  Status Run(RunContext& ctx) const override {
    std::vector<TensorView> views;
    for (size_t i = 0; i < ctx.num_inputs(); ++i) {
      views.push_back(ctx.has_input(i) ? ctx.input(i) : TensorView{});
    }
    ASSIGN_OR_RETURN(std::vector<int64_t> selected, Select(views, ctx.num_inputs()));
    const TensorView& out = ctx.output(0);
    if (static_cast<size_t>(out.num_elements()) != selected.size()) {
      return InvalidArgument("NonMaxSuppression: inputs changed after the output shape was planned");
    }
    if (!selected.empty()) std::memcpy(out.data, selected.data(), selected.size() * 8);
    return Status::OK();
  }

 private:
  StatusOr<std::vector<int64_t>> Select(const std::vector<TensorView>& in, size_t num_inputs) const {
    const TensorView& boxes = in[0];
    const TensorView& scores = in[1];
    int64_t max_out = 0;
    float iou_threshold = 0.f, score_threshold = 0.f;
    bool has_score_threshold = false;
    if (num_inputs > 2 && in[2].data && in[2].num_elements() > 0) {
      ASSIGN_OR_RETURN(std::vector<int64_t> v, ReadInts(in[2], "max_output_boxes_per_class"));
      max_out = v[0];
    }
    if (num_inputs > 3 && in[3].data && in[3].num_elements() > 0) {
      ASSIGN_OR_RETURN(std::vector<float> v, ReadFloats(in[3], "iou_threshold"));
      iou_threshold = v[0];
      if (iou_threshold < 0 || iou_threshold > 1) {
        return InvalidArgument("NonMaxSuppression: iou_threshold must be in [0, 1]");
      }
    }
    if (num_inputs > 4 && in[4].data && in[4].num_elements() > 0) {
      ASSIGN_OR_RETURN(std::vector<float> v, ReadFloats(in[4], "score_threshold"));
      score_threshold = v[0];
      has_score_threshold = true;
    }
    const int64_t B = boxes.shape[0], N = boxes.shape[1], C = scores.shape[1];
    std::vector<int64_t> result;
    if (max_out <= 0 || N == 0) return result;
    const float* bp = boxes.as<float>();
    const float* sp = scores.as<float>();
    std::vector<Box> bx(static_cast<size_t>(N));
    for (int64_t b = 0; b < B; ++b) {
      for (int64_t i = 0; i < N; ++i) {
        const float* p = bp + (b * N + i) * 4;
        Box& q = bx[i];
        if (center_point_box_ != 0) {
          q = {p[1] - p[3] / 2, p[0] - p[2] / 2, p[1] + p[3] / 2, p[0] + p[2] / 2};
        } else {
          q = {std::min(p[0], p[2]), std::min(p[1], p[3]), std::max(p[0], p[2]), std::max(p[1], p[3])};
        }
      }
      for (int64_t c = 0; c < C; ++c) {
        const float* s = sp + (b * C + c) * N;
        using Cand = std::pair<float, int64_t>;
        auto worse = [](const Cand& a, const Cand& b) {
          return a.first < b.first || (a.first == b.first && a.second > b.second);
        };
        std::priority_queue<Cand, std::vector<Cand>, decltype(worse)> queue(worse);
        for (int64_t i = 0; i < N; ++i) {
          if (!has_score_threshold || s[i] > score_threshold) queue.emplace(s[i], i);
        }
        std::vector<int64_t> kept;
        while (!queue.empty() && static_cast<int64_t>(kept.size()) < max_out) {
          const int64_t i = queue.top().second;
          queue.pop();
          bool suppressed = false;
          for (int64_t k : kept) {
            if (Suppress(bx[i], bx[k], iou_threshold)) {
              suppressed = true;
              break;
            }
          }
          if (!suppressed) {
            kept.push_back(i);
            result.insert(result.end(), {b, c, i});
          }
        }
      }
    }
    return result;
  }

  static bool Suppress(const Box& a, const Box& b, float threshold) {
    const float iw = std::min(a.x2, b.x2) - std::max(a.x1, b.x1);
    const float ih = std::min(a.y2, b.y2) - std::max(a.y1, b.y1);
    if (iw <= 0 || ih <= 0) return false;
    const float inter = iw * ih;
    const float area_a = (a.x2 - a.x1) * (a.y2 - a.y1), area_b = (b.x2 - b.x1) * (b.y2 - b.y1);
    const float uni = area_a + area_b - inter;
    if (area_a <= 0 || area_b <= 0 || uni <= 0) return false;
    return inter / uni > threshold;
  }

  int64_t center_point_box_ = 0;
  std::vector<int64_t> selected_;
};

}  // namespace

void RegisterTensorDetectionKernels(KernelRegistry& registry) {
  registry.Register("", "NonMaxSuppression", MakeFactory<NonMaxSuppressionKernel>());
}

}  // namespace gpuhive::cpu
