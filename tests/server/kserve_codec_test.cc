// The KServe JSON / binary request codec, without sockets.
#include "server/kserve_json.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstring>

#include "gpuhive/units.h"
#include "server/request_validation.h"

namespace gpuhive::server {
namespace {

ModelMetadata AddSubMeta(DataType t = DataType::kInt32) {
  ModelMetadata m;
  m.name = "add_sub";
  m.versions = {"1"};
  m.inputs = {{"INPUT0", t, {-1, 4}}, {"INPUT1", t, {-1, 4}}};
  m.outputs = {{"OUTPUT0", t, {-1, 4}}, {"OUTPUT1", t, {-1, 4}}};
  return m;
}

const char* kGood = R"({"id":"r1","inputs":[
  {"name":"INPUT0","datatype":"INT32","shape":[1,4],"data":[1,2,3,4]},
  {"name":"INPUT1","datatype":"INT32","shape":[1,4],"data":[[10,20,30,40]]}],
  "outputs":[{"name":"OUTPUT1"}]})";

Status ParseError(const std::string& body, std::optional<size_t> hl = std::nullopt,
                  ModelMetadata meta = AddSubMeta()) {
  auto r = ParseInferRequest(body, hl, meta);
  return r.ok() ? Status::OK() : r.status();
}

TEST(KServeCodecTest, ParsesJsonInputs) {
  auto r = ParseInferRequest(kGood, std::nullopt, AddSubMeta());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  const InferenceRequest& req = *r->request;
  EXPECT_EQ(req.id, "r1");
  ASSERT_EQ(req.inputs.size(), 2u);
  EXPECT_EQ(req.inputs[1].tensor.shape(), (Shape{1, 4}));
  EXPECT_EQ(req.inputs[1].tensor.as<int32_t>()[3], 40);
  ASSERT_EQ(req.requested_outputs, std::vector<std::string>{"OUTPUT1"});
  EXPECT_EQ(req.priority, -1);
  EXPECT_EQ(req.deadline_ns, 0);
}

struct BadCase {
  const char* what;
  std::string body;
  StatusCode code;
  const char* message_part;
};

TEST(KServeCodecTest, RejectsBadRequestsWithClearMessages) {
  const std::string in1 = R"({"name":"INPUT1","datatype":"INT32","shape":[1,4],"data":[1,2,3,4]})";
  std::vector<BadCase> cases = {
      {"malformed", R"({"inputs":[)", StatusCode::kInvalidArgument, "malformed JSON"},
      {"not object", "[1,2]", StatusCode::kInvalidArgument, "JSON object"},
      {"no inputs", "{}", StatusCode::kInvalidArgument, "'inputs'"},
      {"unknown input", R"({"inputs":[{"name":"NOPE","datatype":"INT32","shape":[1,4],"data":[1,2,3,4]},)" + in1 + "]}",
       StatusCode::kInvalidArgument, "unknown input 'NOPE'"},
      {"wrong dtype", R"({"inputs":[{"name":"INPUT0","datatype":"FP32","shape":[1,4],"data":[1,2,3,4]},)" + in1 + "]}",
       StatusCode::kInvalidArgument, "expected datatype INT32, got FP32"},
      {"wrong shape", R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[1,5],"data":[1,2,3,4,5]},)" + in1 + "]}",
       StatusCode::kInvalidArgument, "does not match"},
      {"too few", R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[1,4],"data":[1,2,3]},)" + in1 + "]}",
       StatusCode::kInvalidArgument, "needs 4 elements, 'data' has 3"},
      {"too many", R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[1,4],"data":[1,2,3,4,5]},)" + in1 + "]}",
       StatusCode::kInvalidArgument, "more elements than its shape"},
      {"string element", R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[1,4],"data":[1,2,"x",4]},)" + in1 + "]}",
       StatusCode::kInvalidArgument, "expected an integer"},
      {"fraction for int", R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[1,4],"data":[1,2,3.5,4]},)" + in1 + "]}",
       StatusCode::kInvalidArgument, "expected an integer"},
      {"int out of range", R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[1,4],"data":[1,2,3,4294967296]},)" + in1 + "]}",
       StatusCode::kInvalidArgument, "out of range"},
      {"duplicate", R"({"inputs":[)" + in1 + "," + in1 + "]}", StatusCode::kInvalidArgument,
       "duplicate input 'INPUT1'"},
      {"missing", R"({"inputs":[)" + in1 + "]}", StatusCode::kInvalidArgument, "missing input 'INPUT0'"},
      {"bytes", R"({"inputs":[{"name":"INPUT0","datatype":"BYTES","shape":[1],"data":["a"]}]})",
       StatusCode::kUnimplemented, "BYTES"},
      {"unknown dtype", R"({"inputs":[{"name":"INPUT0","datatype":"FP128","shape":[1],"data":[1]}]})",
       StatusCode::kInvalidArgument, "unknown datatype 'FP128'"},
      {"negative dim", R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[-1,4],"data":[]}]})",
       StatusCode::kInvalidArgument, "non-negative"},
      {"unknown output", std::string(R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[1,4],"data":[1,2,3,4]},)") + in1 +
       R"(],"outputs":[{"name":"OUT9"}]})", StatusCode::kInvalidArgument, "unknown output 'OUT9'"},
      {"bad priority", std::string(R"({"parameters":{"priority":-3},"inputs":[)") + in1 + "]}",
       StatusCode::kInvalidArgument, "priority"},
      {"bad timeout type", std::string(R"({"parameters":{"timeout":"soon"},"inputs":[)") + in1 + "]}",
       StatusCode::kInvalidArgument, "'timeout' must be an integer"},
      {"binary size without header", R"({"inputs":[{"name":"INPUT0","datatype":"INT32","shape":[1,4],"parameters":{"binary_data_size":16}},)" + in1 + "]}",
       StatusCode::kInvalidArgument, "without Inference-Header-Content-Length"},
  };
  for (const auto& c : cases) {
    Status s = ParseError(c.body);
    EXPECT_EQ(s.code(), c.code) << c.what << ": " << s.ToString();
    EXPECT_NE(s.message().find(c.message_part), std::string::npos) << c.what << ": " << s.ToString();
  }
}

std::string BinaryBody(const std::string& json, const std::vector<std::string>& blobs) {
  std::string b = json;
  for (const auto& x : blobs) b += x;
  return b;
}

std::string Int32Bytes(std::vector<int32_t> v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * 4);
}

TEST(KServeCodecTest, BinaryInputs) {
  std::string json = R"({"inputs":[
    {"name":"INPUT0","datatype":"INT32","shape":[1,4],"parameters":{"binary_data_size":16}},
    {"name":"INPUT1","datatype":"INT32","shape":[1,4],"data":[5,6,7,8]}]})";
  std::string body = BinaryBody(json, {Int32Bytes({-1, 2, -3, 4})});
  auto r = ParseInferRequest(body, json.size(), AddSubMeta());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->request->inputs[0].tensor.as<int32_t>()[2], -3);

  // Length mismatch: 12 bytes claimed for a 16-byte tensor.
  std::string json12 = R"({"inputs":[
    {"name":"INPUT0","datatype":"INT32","shape":[1,4],"parameters":{"binary_data_size":12}},
    {"name":"INPUT1","datatype":"INT32","shape":[1,4],"data":[5,6,7,8]}]})";
  Status s = ParseError(BinaryBody(json12, {Int32Bytes({1, 2, 3})}), json12.size());
  EXPECT_NE(s.message().find("needs 16 bytes, got 12"), std::string::npos) << s.ToString();
  // Claimed size beyond the body.
  s = ParseError(BinaryBody(json, {Int32Bytes({1, 2})}), json.size());
  EXPECT_NE(s.message().find("exceeds the 8 bytes left"), std::string::npos) << s.ToString();
  // Unclaimed trailing bytes.
  s = ParseError(BinaryBody(json, {Int32Bytes({1, 2, 3, 4, 5})}), json.size());
  EXPECT_NE(s.message().find("not claimed"), std::string::npos) << s.ToString();
  // Header length beyond the body.
  s = ParseError(json, json.size() + 1);
  EXPECT_NE(s.message().find("exceeds the body size"), std::string::npos) << s.ToString();
}

TEST(KServeCodecTest, PriorityAndTimeoutParameters) {
  std::string body = R"({"parameters":{"priority":1,"timeout":250000},"inputs":[
    {"name":"INPUT0","datatype":"INT32","shape":[1,4],"data":[1,2,3,4]},
    {"name":"INPUT1","datatype":"INT32","shape":[1,4],"data":[1,2,3,4]}]})";
  int64_t before = NowNs();
  auto r = ParseInferRequest(body, std::nullopt, AddSubMeta());
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->request->priority, 0);  // Triton's 1 (highest) is gpuhive's level 0
  EXPECT_GE(r->request->deadline_ns, before + 250000 * 1000);
  EXPECT_LE(r->request->deadline_ns, NowNs() + 250000 * 1000);
}

TEST(KServeCodecTest, ResponseJsonAndBinaryAgree) {
  InferenceResponse resp;
  resp.model_name = "m";
  resp.model_version = "1";
  std::vector<float> v = {0.1f, -3.4028235e38f, 1e-45f, 123456.789f};
  auto t = Tensor::FromVector(DataType::kFloat32, {1, 4}, v);
  ASSERT_TRUE(t.ok());
  resp.outputs.push_back({"OUTPUT0", std::move(*t)});
  auto json = EncodeInferResponse(resp, {}, false);
  EXPECT_FALSE(json.header_length.has_value());
  auto j = nlohmann::json::parse(json.body);
  auto bin = EncodeInferResponse(resp, {{"OUTPUT0", true}}, false);
  ASSERT_TRUE(bin.header_length.has_value());
  auto header = nlohmann::json::parse(bin.body.substr(0, *bin.header_length));
  EXPECT_EQ(header["outputs"][0]["parameters"]["binary_data_size"], 16);
  const char* raw = bin.body.data() + *bin.header_length;
  for (int i = 0; i < 4; ++i) {
    float from_json = j["outputs"][0]["data"][i].get<float>();
    float from_bin;
    std::memcpy(&from_bin, raw + 4 * i, 4);
    EXPECT_EQ(std::memcmp(&from_json, &from_bin, 4), 0) << i;
    EXPECT_EQ(std::memcmp(&from_bin, &v[i], 4), 0) << i;
  }
}

TEST(KServeCodecTest, HalfConversions) {
  EXPECT_EQ(FloatToHalf(1.0f), 0x3c00);
  EXPECT_EQ(FloatToHalf(-2.0f), 0xc000);
  EXPECT_EQ(FloatToHalf(65504.0f), 0x7bff);
  EXPECT_EQ(FloatToHalf(1e6f), 0x7c00);
  EXPECT_EQ(FloatToHalf(5.960464477539063e-08f), 0x0001);
  for (uint32_t h = 0; h < 0x7c00; ++h) {
    ASSERT_EQ(FloatToHalf(HalfToFloat(static_cast<uint16_t>(h))), h) << h;
  }
  EXPECT_EQ(FloatToBFloat16(1.0f), 0x3f80);
  EXPECT_EQ(BFloat16ToFloat(0x3f80), 1.0f);
}

TEST(KServeCodecTest, RepositoryIndexRequest) {
  EXPECT_EQ(*ParseRepositoryIndexRequest(""), false);
  EXPECT_EQ(*ParseRepositoryIndexRequest(R"({"ready":true})"), true);
  EXPECT_FALSE(ParseRepositoryIndexRequest(R"({"ready":"yes"})").ok());
  EXPECT_FALSE(ParseRepositoryIndexRequest("{").ok());
}

TEST(KServeCodecTest, BearerTokenMatches) {
  EXPECT_TRUE(BearerTokenMatches("Bearer s3cret", "s3cret"));
  EXPECT_TRUE(BearerTokenMatches("bearer s3cret", "s3cret"));  // RFC 7235: scheme case-insensitive
  EXPECT_TRUE(BearerTokenMatches("BEARER   s3cret", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Bearer S3CRET", "s3cret"));  // the token is not
  EXPECT_FALSE(BearerTokenMatches("Bearers3cret", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Bearer s3cre", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Bearer s3crett", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Bearer ", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("Basic s3cret", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("s3cret", "s3cret"));
  EXPECT_FALSE(BearerTokenMatches("", "s3cret"));
}

TEST(KServeCodecTest, JsonEscape) {
  EXPECT_EQ(ErrorJson("a\"b\\c\n\x01"), "{\"error\":\"a\\\"b\\\\c\\n\\u0001\"}");
  EXPECT_TRUE(nlohmann::json::parse(ErrorJson("x\"\n\t")).is_object());
  // Issue 16: bytes that are not UTF-8 (a directory name, a percent-decoded path) are replaced,
  // well-formed sequences kept.
  EXPECT_EQ(JsonEscape("mod\xC3\xA8le"), "mod\xC3\xA8le");
  EXPECT_EQ(JsonEscape("bad\xFF\xFE!"), "bad\\ufffd\\ufffd!");
  EXPECT_EQ(nlohmann::json::parse(ErrorJson("unknown model 'a\xC3\x28'"))["error"], "unknown model 'a\xEF\xBF\xBD('");
}

}  // namespace
}  // namespace gpuhive::server
