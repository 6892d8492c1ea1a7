#include "gpuhive/tensor.h"

#include <gtest/gtest.h>

namespace gpuhive {
namespace {

TEST(TensorTest, DataTypes) {
  EXPECT_EQ(DataTypeSize(DataType::kFloat32), 4u);
  EXPECT_EQ(DataTypeSize(DataType::kInt64), 8u);
  EXPECT_EQ(DataTypeSize(DataType::kString), 0u);
  EXPECT_EQ(ParseDataType("FP16"), DataType::kFloat16);
  EXPECT_EQ(ParseDataType("int64"), DataType::kInt64);
  EXPECT_EQ(ParseDataType("nonsense"), DataType::kUndefined);
  EXPECT_EQ(DataTypeKServeName(DataType::kBool), "BOOL");
}

TEST(TensorTest, AllocateAndCopy) {
  auto t = Tensor::FromVector<float>(DataType::kFloat32, {2, 2}, {1, 2, 3, 4});
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->num_elements(), 4);
  EXPECT_EQ(t->as<float>()[3], 4.f);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(t->data()) % MemoryResource::kAlignment, 0u);
  EXPECT_EQ(NumElements({}), 1);
  EXPECT_EQ(ShapeToString({1, 3, 224, 224}), "[1,3,224,224]");
}

TEST(TensorTest, RejectsBadInput) {
  EXPECT_EQ(Tensor::Allocate(DataType::kFloat32, {2, -1}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Tensor::Allocate(DataType::kString, {2}).status().code(), StatusCode::kUnimplemented);
  EXPECT_EQ(Tensor::FromVector<float>(DataType::kFloat32, {3}, {1, 2}).status().code(),
            StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gpuhive
