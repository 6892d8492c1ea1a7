// ChoosePlacement: which device a model goes to by instance_group and free budget.
#include <gtest/gtest.h>

#include "gpuhive/residency/device_set.h"

namespace gpuhive::residency {
namespace {

std::vector<PlacementTarget> TwoGpusAndTheCpu() {
  return {{.id = "sim:0", .gpu_ordinal = 0, .budget_bytes = 1000},
          {.id = "sim:1", .gpu_ordinal = 1, .budget_bytes = 1000},
          {.id = "cpu", .gpu_ordinal = -1, .budget_bytes = 1000}};
}

ModelConfig WithGroup(InstanceKind kind, std::vector<int> gpus = {}) {
  ModelConfig c;
  c.name = "m";
  c.instance_groups.push_back(InstanceGroupConfig{.kind = kind, .gpus = std::move(gpus)});
  return c;
}

TEST(ChoosePlacement, TheGpuWithTheMostFreeBudgetThenFewestModels) {
  auto t = TwoGpusAndTheCpu();
  EXPECT_EQ(*ChoosePlacement("m", ModelConfig{}, 100, t), 0u);  // a tie: the lower index
  t[0].used_bytes = 300;
  EXPECT_EQ(*ChoosePlacement("m", ModelConfig{}, 100, t), 1u);
  t[1].placed_bytes = 500;  // placed there, not loaded yet: counts as held
  EXPECT_EQ(*ChoosePlacement("m", ModelConfig{}, 100, t), 0u);
  t[0].used_bytes = 500;
  t[0].placed_models = 3;
  t[1].placed_models = 1;
  EXPECT_EQ(*ChoosePlacement("m", ModelConfig{}, 100, t), 1u);  // equal free: fewer models
  EXPECT_EQ(*ChoosePlacement("m", WithGroup(InstanceKind::kAuto), 100, t), 1u);
}

TEST(ChoosePlacement, InstanceGroupRestrictsTheDevices) {
  auto t = TwoGpusAndTheCpu();
  t[1].used_bytes = 900;
  EXPECT_EQ(*ChoosePlacement("m", WithGroup(InstanceKind::kGpu, {1}), 50, t), 1u);
  EXPECT_EQ(*ChoosePlacement("m", WithGroup(InstanceKind::kGpu), 50, t), 0u);
  EXPECT_EQ(*ChoosePlacement("m", WithGroup(InstanceKind::kCpu), 50, t), 2u);
  auto bad = ChoosePlacement("m", WithGroup(InstanceKind::kGpu, {5}), 50, t);
  ASSERT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("asks for GPU 5, but this server has 2 GPU device(s): sim:0"),
            std::string::npos)
      << bad.status().ToString();
}

TEST(ChoosePlacement, RefusedWhenNoAllowedDeviceCanHoldIt) {
  auto t = TwoGpusAndTheCpu();
  t[1].budget_bytes = 5000;
  EXPECT_EQ(*ChoosePlacement("m", ModelConfig{}, 2000, t), 1u);  // only sim:1 is large enough
  auto r = ChoosePlacement("m", WithGroup(InstanceKind::kGpu, {0}), 2000, t);
  ASSERT_EQ(r.status().code(), StatusCode::kResourceExhausted);
  EXPECT_EQ(r.status().shortage(), MemoryShortage::kNeverFits);
  EXPECT_NE(r.status().message().find("fits on none of the devices it may use: sim:0"), std::string::npos);
}

TEST(ChoosePlacement, WithoutGpusEverythingGoesToTheCpu) {
  std::vector<PlacementTarget> cpu_only = {{.id = "cpu", .gpu_ordinal = -1, .budget_bytes = 1000}};
  EXPECT_EQ(*ChoosePlacement("m", WithGroup(InstanceKind::kGpu, {3}), 10, cpu_only), 0u);
  EXPECT_EQ(*ChoosePlacement("m", ModelConfig{}, 10, cpu_only), 0u);
  std::vector<PlacementTarget> gpus_only = {{.id = "sim:0", .gpu_ordinal = 0, .budget_bytes = 1000}};
  EXPECT_EQ(ChoosePlacement("m", WithGroup(InstanceKind::kCpu), 10, gpus_only).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gpuhive::residency
