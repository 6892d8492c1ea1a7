// `gpuhive run MODEL --input NAME=FILE.pb ... --output-dir DIR`: one inference with tensors in ONNX
// TensorProto files (the format of the ONNX test data).
#include <filesystem>

#include "cli/command.h"
#include "cli/model_util.h"
#include "gpuhive/onnx_import.h"

namespace gpuhive::cli {
namespace {

struct RunOptions {
  std::string model;
  std::vector<std::string> inputs;
  std::string output_dir = ".";
  int threads = 1;
};

int RunModel(const RunOptions& o) {
  CompileOptions co;
  co.num_threads = o.threads;
  auto model = LoadModel(o.model, co);
  if (!model.ok()) {
    std::fprintf(stderr, "error: %s\n", model.status().ToString().c_str());
    return 1;
  }
  std::vector<Tensor> tensors((*model)->inputs().size());
  std::vector<bool> given(tensors.size(), false);
  for (const std::string& arg : o.inputs) {
    auto eq = arg.find('=');
    std::string name = eq == std::string::npos ? "" : arg.substr(0, eq);
    std::string file = eq == std::string::npos ? arg : arg.substr(eq + 1);
    auto read = ReadTensorProtoFile(file);
    if (!read.ok()) {
      std::fprintf(stderr, "error: %s: %s\n", file.c_str(), read.status().ToString().c_str());
      return 1;
    }
    if (name.empty()) name = read->first;
    size_t idx = tensors.size();
    for (size_t i = 0; i < (*model)->inputs().size(); ++i) {
      if ((*model)->inputs()[i].name == name) idx = i;
    }
    if (idx == tensors.size()) {
      std::fprintf(stderr, "error: the model has no input named '%s'\n", name.c_str());
      return 1;
    }
    tensors[idx] = std::move(read->second);
    given[idx] = true;
  }
  std::vector<TensorView> views;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!given[i]) {
      std::fprintf(stderr, "error: missing input '%s'\n", (*model)->inputs()[i].name.c_str());
      return 1;
    }
    views.push_back(tensors[i].view());
  }
  ExecutionContext ctx({o.threads});
  auto out = (*model)->Run(ctx, views);
  if (!out.ok()) {
    std::fprintf(stderr, "error: %s\n", out.status().ToString().c_str());
    return 1;
  }
  std::error_code ec;
  std::filesystem::create_directories(o.output_dir, ec);
  for (size_t i = 0; i < out->size(); ++i) {
    const std::string& name = (*model)->outputs()[i].name;
    std::string path = o.output_dir + "/output_" + std::to_string(i) + ".pb";
    Status st = WriteTensorProtoFile(path, name, (*out)[i]);
    if (!st.ok()) {
      std::fprintf(stderr, "error: %s\n", st.ToString().c_str());
      return 1;
    }
    std::printf("%s %s %s -> %s\n", name.c_str(), std::string(DataTypeName((*out)[i].dtype())).c_str(),
                ShapeToString((*out)[i].shape()).c_str(), path.c_str());
  }
  return 0;
}

CommandRegistration kRun("", "run", "Run a model once on TensorProto inputs; write outputs as TensorProto files",
                         [](CLI::App& app) {
                           auto o = std::make_shared<RunOptions>();
                           app.add_option("model", o->model, "model.onnx")->required();
                           app.add_option("--input,-i", o->inputs, "NAME=FILE.pb (or FILE.pb: name from the file)");
                           app.add_option("--output-dir,-o", o->output_dir, "where output_<i>.pb go");
                           app.add_option("--threads,-t", o->threads, "CPU threads");
                           return [o] { return RunModel(*o); };
                         });

}  // namespace
}  // namespace gpuhive::cli
