#include "fake_runner.h"

#include <chrono>
#include <thread>

#include "gpuhive/units.h"

namespace gpuhive::sched::testing {

void Gate::Open() {
  std::lock_guard<std::mutex> lk(mu_);
  open_ = true;
  cv_.notify_all();
}

bool Gate::Wait() {
  std::unique_lock<std::mutex> lk(mu_);
  waiters_++;
  cv_.notify_all();
  return cv_.wait_for(lk, std::chrono::seconds(10), [&] { return open_; });
}

bool Gate::WaitForWaiters(int n) {
  std::unique_lock<std::mutex> lk(mu_);
  return cv_.wait_for(lk, std::chrono::seconds(10), [&] { return waiters_ >= n; });
}

StatusOr<std::vector<Tensor>> FakeRunner::RunBatch(const std::vector<TensorView>& inputs, const WorkerContext& worker) {
  const int64_t start_ns = NowNs();
  if (options_.on_run) options_.on_run();
  if (options_.gate && !options_.gate->Wait()) return Internal("gate never opened");
  int64_t us = options_.service_us_by_device ? options_.service_us_by_device(worker.device_index) : options_.service_us;
  if (!inputs.empty() && !inputs[0].shape.empty()) us += options_.service_us_per_row * inputs[0].shape[0];
  if (us > 0) std::this_thread::sleep_for(std::chrono::microseconds(us));
  if (inputs.size() != 1 || inputs[0].dtype != DataType::kFloat32) return InvalidArgument("expected one float input");
  const TensorView& x = inputs[0];
  ASSIGN_OR_RETURN(Tensor y, Tensor::Allocate(DataType::kFloat32, x.shape));
  const float* src = x.as<float>();
  float* dst = y.as<float>();
  for (int64_t i = 0; i < x.num_elements(); ++i) dst[i] = 2.0f * src[i];
  ran_ = true;
  BatchRecord rec;
  rec.rows = x.shape.empty() ? 1 : x.shape[0];
  int64_t cols = rec.rows == 0 ? 0 : x.num_elements() / rec.rows;
  for (int64_t r = 0; r < rec.rows; ++r) rec.first_values.push_back(src[r * cols]);
  rec.device_index = worker.device_index;
  rec.worker_index = worker.worker_index;
  rec.start_ns = start_ns;
  rec.end_ns = NowNs();
  {
    std::lock_guard<std::mutex> lk(mu_);
    batches_.push_back(std::move(rec));
  }
  std::vector<Tensor> out;
  out.push_back(std::move(y));
  return out;
}

std::vector<BatchRecord> FakeRunner::batches() const {
  std::lock_guard<std::mutex> lk(mu_);
  return batches_;
}

std::vector<float> FakeRunner::order() const {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<float> v;
  for (const auto& b : batches_) v.insert(v.end(), b.first_values.begin(), b.first_values.end());
  return v;
}

ResponseCallback Collector::Callback() {
  return [this](InferenceResponse r) {
    // Notify under the lock: a test may destroy the collector as soon as WaitFor returns.
    std::lock_guard<std::mutex> lk(mu_);
    responses_.push_back(std::move(r));
    cv_.notify_all();
  };
}

bool Collector::WaitFor(size_t n) {
  std::unique_lock<std::mutex> lk(mu_);
  return cv_.wait_for(lk, std::chrono::seconds(10), [&] { return responses_.size() >= n; });
}

std::vector<InferenceResponse> Collector::responses() const {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<InferenceResponse> out;
  for (const auto& r : responses_) {
    InferenceResponse c;
    c.model_name = r.model_name;
    c.request_id = r.request_id;
    c.status = r.status;
    c.queue_ns = r.queue_ns;
    c.compute_ns = r.compute_ns;
    c.batch_size = r.batch_size;
    c.retry_after_s = r.retry_after_s;
    for (const auto& o : r.outputs) {
      auto t = Tensor::FromBytes(o.tensor.dtype(), o.tensor.shape(), o.tensor.data(), o.tensor.bytes());
      if (t.ok()) c.outputs.push_back({o.name, std::move(t).value()});
    }
    out.push_back(std::move(c));
  }
  return out;
}

InferenceResponse Collector::Get(const std::string& id) const {
  for (auto& r : responses()) {
    if (r.request_id == id) return std::move(r);
  }
  return {};
}

size_t Collector::count(const std::string& id) const {
  std::lock_guard<std::mutex> lk(mu_);
  size_t n = 0;
  for (const auto& r : responses_) n += r.request_id == id;
  return n;
}

std::unique_ptr<InferenceRequest> MakeRequest(const std::string& model, float value, int64_t rows, int64_t cols,
                                              ResponseCallback cb, int priority, const std::string& tenant) {
  auto req = std::make_unique<InferenceRequest>();
  req->model_name = model;
  req->id = std::to_string(value);
  req->priority = priority;
  req->tenant = tenant;
  std::vector<float> x(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) x[static_cast<size_t>(r * cols + c)] = value + static_cast<float>(r);
  }
  auto t = Tensor::FromVector(DataType::kFloat32, {rows, cols}, x);
  if (t.ok()) req->inputs.push_back({"x", std::move(t).value()});
  req->on_complete = std::move(cb);
  return req;
}

}  // namespace gpuhive::sched::testing
