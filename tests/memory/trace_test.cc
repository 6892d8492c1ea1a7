#include "gpuhive/memory/trace.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <set>

#include "gpuhive/memory/naive_resource.h"
#include "gpuhive/memory/pool_resource.h"

namespace gpuhive {
namespace {

TEST(TraceFormatTest, RoundTrips) {
  Trace t;
  t.description = "two lines\nof description";
  t.events = {{TraceOp::kAlloc, 1, 4096, 3, MemoryKind::kWeights, 0},
              {TraceOp::kAlloc, 2, 100, 3, MemoryKind::kWorkspace, 2},
              {TraceOp::kFree, 2, 100, 3, MemoryKind::kWorkspace, 2},
              {TraceOp::kFree, 1, 4096, 3, MemoryKind::kWeights, 0}};
  std::string text = FormatTrace(t);
  EXPECT_NE(text.find("a 2 100 3 workspace 2\n"), std::string::npos) << text;
  auto back = ParseTrace(text);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->events, t.events);
  EXPECT_EQ(back->description, t.description);
  TraceSummary s = SummarizeTrace(*back);
  EXPECT_EQ(s.num_allocations, 2u);
  EXPECT_EQ(s.peak_live_bytes, 4196u);
  EXPECT_EQ(s.min_bytes, 100u);
  EXPECT_EQ(s.max_bytes, 4096u);
}

TEST(TraceFormatTest, RejectsMalformedInputWithLineNumbers) {
  const std::string h = "# gpuhive-memory-trace v1\n";
  struct Case {
    std::string text, expect;
  };
  std::vector<Case> cases = {
      {"a 1 10 0 weights 0\n", "missing header"},
      {h + "a 1 10 0 weights\n", "line 2: expected 6 fields"},
      {h + "x 1 10 0 weights 0\n", "unknown event"},
      {h + "a one 10 0 weights 0\n", "bad id"},
      {h + "a 1 -5 0 weights 0\n", "bad byte count"},
      {h + "a 1 10 0 bananas 0\n", "unknown kind"},
      {h + "f 7 10 0 weights 0\n", "free of id 7 which is not live"},
      {h + "a 1 10 0 weights 0\na 1 10 0 weights 0\n", "line 3: id 1 allocated while still live"},
      {h + "a 1 10 0 weights 0\nf 1 11 0 weights 0\n", "allocated with 10"},
      {h + "a 1 0 0 weights 0\n", "allocation of 0 bytes"},
  };
  for (const Case& c : cases) {
    auto r = ParseTrace(c.text);
    ASSERT_FALSE(r.ok()) << c.text;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos) << r.status().ToString();
  }
  EXPECT_EQ(ReadTraceFile("/nonexistent/trace.txt").status().code(), StatusCode::kNotFound);
}

TEST(RecorderResourceTest, RecordsWhatPassesThroughAndReplaysIdentically) {
  std::string path = (std::filesystem::temp_directory_path() / "gpuhive_recorder_test.trace").string();
  auto pool = std::move(*PoolResource::Create({}));
  {
    auto rec = RecorderResource::Create(pool.get(), path, "unit test");
    ASSERT_TRUE(rec.ok());
    int dummy_stream = 0;
    StreamView s1{CpuDevice(), nullptr}, s2{CpuDevice(), &dummy_stream};
    void* a = *(*rec)->Allocate(1000, {1, MemoryKind::kWeights}, s1);
    void* b = *(*rec)->Allocate(5u << 20, {2, MemoryKind::kActivations}, s2);
    (*rec)->Deallocate(a, 1000, {1, MemoryKind::kWeights}, s1);
    void* c = *(*rec)->Allocate(300, {2, MemoryKind::kIO}, s2);
    (*rec)->Deallocate(b, 5u << 20, {2, MemoryKind::kActivations}, s2);
    (*rec)->Deallocate(c, 300, {2, MemoryKind::kIO}, s2);
    Trace t = (*rec)->Snapshot();
    std::vector<TraceEvent> expect = {{TraceOp::kAlloc, 1, 1000, 1, MemoryKind::kWeights, 0},
                                      {TraceOp::kAlloc, 2, 5u << 20, 2, MemoryKind::kActivations, 1},
                                      {TraceOp::kFree, 1, 1000, 1, MemoryKind::kWeights, 0},
                                      {TraceOp::kAlloc, 3, 300, 2, MemoryKind::kIO, 1},
                                      {TraceOp::kFree, 2, 5u << 20, 2, MemoryKind::kActivations, 1},
                                      {TraceOp::kFree, 3, 300, 2, MemoryKind::kIO, 1}};
    EXPECT_EQ(t.events, expect);
  }
  auto from_file = ReadTraceFile(path);
  ASSERT_TRUE(from_file.ok()) << from_file.status().ToString();
  EXPECT_EQ(from_file->events.size(), 6u);
  EXPECT_EQ(from_file->description, "unit test");
  std::remove(path.c_str());

  auto replay_pool = std::move(*PoolResource::Create({}));
  auto r = ReplayTrace(*from_file, replay_pool.get());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->allocations, 3u);
  EXPECT_EQ(r->failures, 0u);
  EXPECT_EQ(r->peak_requested_bytes, 1000u + (5u << 20));
  EXPECT_EQ(replay_pool->Stats()->peak_bytes, 1000u + (5u << 20));
  EXPECT_EQ(replay_pool->Stats()->current_bytes, 0u);
}

TEST(RecorderResourceTest, BadPathIsAnError) {
  EXPECT_FALSE(RecorderResource::Create(DefaultHostResource(), "/nonexistent/dir/x.trace").ok());
}

TEST(ExecutorWorkloadTest, MimicsTheExecutor) {
  ExecutorWorkloadOptions o;
  o.num_requests = 400;
  o.requests_per_phase = 50;
  Trace t = GenerateExecutorTrace(o);
  // Valid: every free matches a live allocation (ParseTrace checks), and everything is freed.
  auto parsed = ParseTrace(FormatTrace(t));
  ASSERT_TRUE(parsed.ok()) << parsed.status().ToString();
  TraceSummary s = SummarizeTrace(t);
  EXPECT_EQ(s.num_allocations, s.num_frees);
  EXPECT_GE(s.num_owners, 4u);  // models were unloaded and others loaded
  EXPECT_NE(t.description.find("SYNTHETIC"), std::string::npos);
  std::set<uint64_t> arena_sizes;
  std::set<MemoryKind> kinds;
  std::set<uint32_t> streams;
  for (const TraceEvent& e : t.events) {
    kinds.insert(e.kind);
    streams.insert(e.stream);
    if (e.op == TraceOp::kAlloc && e.kind == MemoryKind::kActivations) arena_sizes.insert(e.bytes);
    if (e.kind == MemoryKind::kWeights) {
      EXPECT_EQ(e.stream, 0u);
    }
  }
  EXPECT_EQ(kinds.size(), 4u);  // weights, activations, workspace, io
  EXPECT_GE(streams.size(), 3u);
  EXPECT_GE(arena_sizes.size(), 8u);  // changing batch sizes
  // Deterministic for a seed.
  EXPECT_EQ(GenerateExecutorTrace(o).events, t.events);
  o.seed = 2;
  EXPECT_NE(GenerateExecutorTrace(o).events, t.events);
}

TEST(ReplayTest, CountsFailuresUnderBudget) {
  Trace t;
  t.events = {{TraceOp::kAlloc, 1, 600, 0, MemoryKind::kOther, 0},
              {TraceOp::kAlloc, 2, 600, 0, MemoryKind::kOther, 0},   // does not fit in 1024
              {TraceOp::kFree, 2, 600, 0, MemoryKind::kOther, 0},    // skipped: never allocated
              {TraceOp::kFree, 1, 600, 0, MemoryKind::kOther, 0},
              {TraceOp::kAlloc, 3, 1000, 0, MemoryKind::kOther, 0}};  // fits again
  auto ff = std::move(*FirstFitResource::Create(1024));
  ReplayOptions ro;
  ro.budget_bytes = 1200;
  auto r = ReplayTrace(t, ff.get(), ro);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->allocations, 3u);
  EXPECT_EQ(r->failures, 1u);
  EXPECT_EQ(r->failures_under_budget, 1u);  // 1200 live bytes <= budget 1200
  EXPECT_EQ(r->peak_requested_bytes, 1000u);
  EXPECT_EQ(ff->free_bytes(), 1024u);  // the trailing live allocation was freed
  Trace bad;
  bad.events = {{TraceOp::kFree, 9, 1, 0, MemoryKind::kOther, 0}};
  EXPECT_EQ(ReplayTrace(bad, ff.get()).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gpuhive
