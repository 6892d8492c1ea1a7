// `gpuhive bench record-trace`: records the allocation trace of the real executor serving several
// models with changing batch sizes, loads and unloads (weights, arenas, workspaces and I/O all go
// through one RecorderResource). `gpuhive bench memory --trace FILE` replays it through the pool
// and the naive first-fit design.
#include <deque>
#include <memory>

#include "cli/command.h"
#include "cli/model_util.h"
#include "gpuhive/memory/trace.h"
#include "gpuhive/units.h"

namespace gpuhive::cli {
namespace {

struct RecordOptions {
  std::string out = "bench/traces/executor.trace";
  std::vector<std::string> models;
  std::vector<int64_t> batches = {1, 4, 2, 8};
  int rounds = 2;
  int max_resident = 2;
  int threads = 1;
};

struct Loaded {
  uint32_t owner;
  std::string path;
  std::unique_ptr<CompiledModel> model;
  std::unique_ptr<ExecutionContext> ctx;
};

int RecordTrace(const RecordOptions& o) {
  auto rec = RecorderResource::Create(DefaultHostResource(), o.out,
                                      "gpuhive executor: " + std::to_string(o.models.size()) + " models");
  if (!rec.ok()) {
    std::fprintf(stderr, "error: %s\n", rec.status().ToString().c_str());
    return 1;
  }
  MemoryResource* mr = rec->get();
  std::deque<Loaded> resident;  // oldest first: unloaded when more than max_resident are loaded
  int requests = 0, loads = 0;
  for (int round = 0; round < o.rounds; ++round) {
    for (size_t m = 0; m < o.models.size(); ++m) {
      Loaded l;
      l.owner = static_cast<uint32_t>(m + 1);
      l.path = o.models[m];
      CompileOptions co;
      co.num_threads = o.threads;
      co.memory = mr;
      co.owner_tag = l.owner;
      auto model = LoadModel(l.path, co);
      if (!model.ok()) {
        std::fprintf(stderr, "error: %s: %s\n", l.path.c_str(), model.status().ToString().c_str());
        return 1;
      }
      l.model = std::move(model).value();
      ExecutionContext::Options eo;
      eo.num_threads = o.threads;
      eo.memory = mr;
      eo.arena_tag = AllocTag{l.owner, MemoryKind::kActivations};
      l.ctx = std::make_unique<ExecutionContext>(eo);
      ++loads;
      resident.push_back(std::move(l));
      while (static_cast<int>(resident.size()) > o.max_resident) resident.pop_front();  // unload
      // Traffic on every resident model, batch sizes changing between requests.
      for (Loaded& r : resident) {
        for (int64_t b : o.batches) {
          auto shapes = ResolveInputShapes(*r.model, {}, b, 16);
          if (!shapes.ok()) return 1;
          std::vector<Tensor> inputs;
          std::vector<TensorView> views;
          for (size_t i = 0; i < shapes->size(); ++i) {
            auto t = RandomTensor(r.model->inputs()[i].dtype, (*shapes)[i], static_cast<uint32_t>(i), 2);
            if (!t.ok()) return 1;
            inputs.push_back(std::move(t).value());
            views.push_back(inputs.back().view());
          }
          auto out = r.model->Run(*r.ctx, views);
          if (!out.ok()) {
            std::fprintf(stderr, "error: %s: %s\n", r.path.c_str(), out.status().ToString().c_str());
            return 1;
          }
          ++requests;
        }
        if ((requests / o.batches.size()) % 3 == 0) r.ctx->ReleaseArena();  // shrink under pressure
      }
      std::fprintf(stderr, "round %d: loaded %s, %zu resident, %d requests so far\n", round, o.models[m].c_str(),
                   resident.size(), requests);
    }
  }
  resident.clear();
  Trace trace = (*rec)->Snapshot();
  std::printf("recorded %zu events (%d loads, %d requests) to %s\n", trace.events.size(), loads, requests,
              o.out.c_str());
  return 0;
}

CommandRegistration kRecord("bench", "record-trace",
                            "Record the executor's allocation trace over several models (for bench memory --trace)",
                            [](CLI::App& app) {
                              auto o = std::make_shared<RecordOptions>();
                              app.add_option("models", o->models, "model.onnx files")->required();
                              app.add_option("--out", o->out, "trace file")->capture_default_str();
                              app.add_option("--batches", o->batches, "batch sizes, cycled per model");
                              app.add_option("--rounds", o->rounds, "passes over the model list")->capture_default_str();
                              app.add_option("--max-resident", o->max_resident, "models loaded at once")
                                  ->capture_default_str();
                              app.add_option("--threads", o->threads, "CPU threads");
                              return [o] { return RecordTrace(*o); };
                            });

}  // namespace
}  // namespace gpuhive::cli
