#include "gpuhive/monitor/metric_names.h"

#include <map>
#include <type_traits>

namespace gpuhive::monitor {

namespace {
constexpr MetricType C = MetricType::kCounter;
constexpr MetricType G = MetricType::kGauge;
constexpr MetricType H = MetricType::kHistogram;
}  // namespace

const std::vector<MetricDef>& AllMetricDefs() {
  static const std::vector<MetricDef> defs = [] {
    const std::vector<double> lat = LatencyBucketsSeconds();
    const std::vector<double> batch = {1, 2, 4, 8, 16, 32, 64, 128, 256};
    return std::vector<MetricDef>{
        {"gpuhive_inference_requests_total", C, "Inference requests by outcome.",
         {"model", "version", "outcome"}, {}},
        {"gpuhive_inference_executions_total", C, "Batches executed.", {"model", "version"}, {}},
        {"gpuhive_inference_count_total", C, "Inferences executed (batch items).",
         {"model", "version"}, {}},
        {"gpuhive_queue_duration_seconds", H, "Time requests spent queued.", {"model"}, lat},
        {"gpuhive_compute_duration_seconds", H, "Time spent computing a request's batch.",
         {"model"}, lat},
        {"gpuhive_request_duration_seconds", H, "End-to-end request time in the server.",
         {"model"}, lat},
        {"gpuhive_batch_size", H, "Size of executed batches.", {"model"}, batch},
        {"gpuhive_queue_depth", G, "Requests waiting in the model's queue.", {"model"}, {}},
        {"gpuhive_device_memory_bytes", G, "Device memory in use by kind.", {"device", "kind"}, {}},
        {"gpuhive_device_memory_budget_bytes", G, "Memory budget of the device.", {"device"}, {}},
        {"gpuhive_model_memory_bytes", G, "Device memory held by a model.", {"model", "device"}, {}},
        {"gpuhive_model_host_to_device_bytes_total", C,
         "Weight bytes copied host -> device by the model's swap-ins.", {"model", "device"}, {}},
        {"gpuhive_model_host_to_device_seconds_total", C,
         "Time the model's host -> device weight copies took.", {"model", "device"}, {}},
        {"gpuhive_model_precision_error", G,
         "Relative L2 error of the model's reduced precision against FP32, measured at load.",
         {"model", "precision"}, {}},
        {"gpuhive_pool_reserved_bytes", G, "Bytes reserved by the pool from its upstream.",
         {"device"}, {}},
        {"gpuhive_pool_in_use_bytes", G, "Bytes of the pool handed out.", {"device"}, {}},
        {"gpuhive_pool_fragmentation_ratio", G, "1 - largest free block / total free.", {"device"},
         {}},
        {"gpuhive_model_loads_total", C, "Model loads.", {"model"}, {}},
        {"gpuhive_model_evictions_total", C, "Model evictions from device memory.", {"model"}, {}},
        {"gpuhive_model_swaps_total", C, "Model swaps between host and device.",
         {"model", "direction"}, {}},
        {"gpuhive_swap_duration_seconds", H, "Duration of model swaps.", {"model", "direction"},
         lat},
        {"gpuhive_cpu_fallback", G,
         "1 when models run on the host CPU because no GPU, driver or GPU executor is usable.", {}, {}},
        {"gpuhive_model_resident", G, "1 when the model is resident on the device.",
         {"model", "device"}, {}},
        {"gpuhive_residency_acquires_total", C, "Model acquisitions by requests and preloads.",
         {"device"}, {}},
        {"gpuhive_residency_hits_total", C, "Acquisitions that found the model resident.",
         {"device"}, {}},
        {"gpuhive_residency_bytes_swapped_in_total", C, "Bytes made resident by loads.",
         {"device"}, {}},
        {"gpuhive_preloads_total", C, "Predictive preloads by outcome (done, hit, wasted).",
         {"device", "outcome"}, {}},
        {"gpuhive_memory_pressure_events_total", C,
         "Memory-pressure handling: evict_retry, batch_split, cpu_fallback, refused.",
         {"device", "action"}, {}},
        {"gpuhive_host_to_device_bandwidth_bytes_per_second", G,
         "Host-to-device copy bandwidth measured at start-up.", {"device"}, {}},
        {"gpuhive_tenant_device_seconds_total", C, "Device time served per tenant.", {"tenant"},
         {}},
        {"gpuhive_device_busy_seconds_total", C, "Time the device's workers spent executing.",
         {"device"}, {}},
        {"gpuhive_batch_memory_allowance_bytes", G,
         "Activation bytes the unreserved workers' batches may hold together (--batch-memory; 0: no bound).",
         {"device"}, {}},
        {"gpuhive_batch_memory_held_bytes", G,
         "Activation bytes the running batches of the unreserved workers hold (one-row bytes times rows).",
         {"device"}, {}},
        {"gpuhive_gpu_utilization_ratio", G, "GPU utilization (0..1).", {"gpu"}, {}},
        {"gpuhive_gpu_memory_used_bytes", G, "GPU memory used (all processes).", {"gpu"}, {}},
        {"gpuhive_gpu_memory_total_bytes", G, "GPU memory total.", {"gpu"}, {}},
        {"gpuhive_gpu_temperature_celsius", G, "GPU core temperature.", {"gpu"}, {}},
        {"gpuhive_gpu_power_watts", G, "GPU power draw.", {"gpu"}, {}},
        {"gpuhive_gpu_power_limit_watts", G, "Enforced GPU power limit.", {"gpu"}, {}},
        {"gpuhive_gpu_clock_hertz", G, "Current GPU clock.", {"gpu", "clock"}, {}},
        {"gpuhive_gpu_throttle", G, "1 when the clock throttle reason is active.",
         {"gpu", "reason"}, {}},
        {"gpuhive_gpu_ecc_errors_total", C, "Volatile ECC errors since driver load.",
         {"gpu", "type"}, {}},
        {"gpuhive_gpu_pcie_bytes_per_second", G, "PCIe throughput.", {"gpu", "direction"}, {}},
        {"gpuhive_gpu_health", G, "1 for the GPU's current health state.", {"gpu", "state"}, {}},
        {"gpuhive_gpu_info", G, "GPU identity; always 1.", {"gpu", "name"}, {}},
        {"gpuhive_process_resident_memory_bytes", G, "Resident set size of the process.", {}, {}},
        {"gpuhive_process_cpu_seconds_total", C, "User and system CPU time of the process.", {},
         {}},
        {"gpuhive_host_memory_total_bytes", G, "Host memory total.", {}, {}},
        {"gpuhive_host_memory_available_bytes", G, "Host memory available.", {}, {}},
        {"gpuhive_http_requests_total", C, "HTTP requests by route and status code.",
         {"method", "route", "code"}, {}},
        {"gpuhive_grpc_requests_total", C, "gRPC requests by method and status code.",
         {"method", "code"}, {}},
        {"gpuhive_http_refusals_total", C,
         "HTTP requests or connections refused to bound memory (reason: body_bytes, connections).",
         {"reason"}, {}},
        {"nv_inference_request_success", C, "Number of successful inference requests, all batch sizes",
         {"model", "version"}, {}},
        {"nv_inference_request_failure", C, "Number of failed inference requests, all batch sizes",
         {"model", "reason", "version"}, {}},
        {"nv_inference_count", C, "Number of inferences performed (does not include cached requests)",
         {"model", "version"}, {}},
        {"nv_inference_exec_count", C,
         "Number of model executions performed (does not include cached requests)", {"model", "version"}, {}},
        {"nv_inference_request_duration_us", C, "Cumulative inference request duration in microseconds",
         {"model", "version"}, {}},
        {"nv_inference_queue_duration_us", C, "Cumulative inference queuing duration in microseconds",
         {"model", "version"}, {}},
        {"nv_inference_compute_input_duration_us", C,
         "Cumulative compute input duration in microseconds", {"model", "version"}, {}},
        {"nv_inference_compute_infer_duration_us", C,
         "Cumulative compute inference duration in microseconds", {"model", "version"}, {}},
        {"nv_inference_compute_output_duration_us", C,
         "Cumulative inference compute output duration in microseconds", {"model", "version"}, {}},
        {"nv_inference_pending_request_count", G,
         "Instantaneous number of pending requests awaiting execution per-model.", {"model", "version"}, {}},
        {"nv_gpu_utilization", G, "GPU utilization rate [0.0 - 1.0)", {"gpu_uuid"}, {}},
        {"nv_gpu_memory_total_bytes", G, "GPU total memory, in bytes", {"gpu_uuid"}, {}},
        {"nv_gpu_memory_used_bytes", G, "GPU used memory, in bytes", {"gpu_uuid"}, {}},
        {"nv_gpu_power_usage", G, "GPU power usage in watts", {"gpu_uuid"}, {}},
        {"nv_gpu_power_limit", G, "GPU power management limit in watts", {"gpu_uuid"}, {}},
        {"nv_energy_consumption", C, "GPU energy consumption in joules since the Triton Server started",
         {"gpu_uuid"}, {}},
        {"nv_cpu_utilization", G, "CPU utilization rate [0.0 - 1.0]", {}, {}},
        {"nv_cpu_memory_total_bytes", G, "CPU total memory (RAM), in bytes", {}, {}},
        {"nv_cpu_memory_used_bytes", G, "CPU used memory (RAM), in bytes", {}, {}},
    };
  }();
  return defs;
}

const char* TritonFailureReason(StatusCode code) {
  switch (code) {
    case StatusCode::kResourceExhausted:  // queue full
    case StatusCode::kUnavailable:        // not ready, shutting down, cannot be made resident
    case StatusCode::kDeadlineExceeded:   // its timeout passed in the queue
      return "REJECTED";
    case StatusCode::kCancelled: return "CANCELED";
    case StatusCode::kInternal: return "BACKEND";  // the model's execution failed
    default: return "OTHER";
  }
}

StatusOr<GpuhiveMetrics> RegisterGpuhiveMetrics(Registry* r) {
  std::map<std::string, FamilyBase*> by_name;
  for (const MetricDef& d : AllMetricDefs()) {
    switch (d.type) {
      case MetricType::kCounter: {
        ASSIGN_OR_RETURN(by_name[d.name], r->AddCounter(d.name, d.help, d.labels));
        break;
      }
      case MetricType::kGauge: {
        ASSIGN_OR_RETURN(by_name[d.name], r->AddGauge(d.name, d.help, d.labels));
        break;
      }
      case MetricType::kHistogram: {
        ASSIGN_OR_RETURN(by_name[d.name], r->AddHistogram(d.name, d.help, d.labels, d.buckets));
        break;
      }
    }
  }
  GpuhiveMetrics m{};
  Status st;
  auto bind = [&](auto*& field, const std::string& name) {
    using F = std::remove_reference_t<decltype(*field)>;
    MetricType want = std::is_same_v<F, CounterFamily> ? MetricType::kCounter
                      : std::is_same_v<F, GaugeFamily> ? MetricType::kGauge
                                                       : MetricType::kHistogram;
    auto it = by_name.find(name);
    if (it == by_name.end() || it->second->type() != want) {
      st = Internal("metric {} missing from the table or of the wrong type", name);
      return;
    }
    field = static_cast<F*>(it->second);
  };
  bind(m.inference_requests_total, "gpuhive_inference_requests_total");
  bind(m.nv_inference_request_success, "nv_inference_request_success");
  bind(m.nv_inference_request_failure, "nv_inference_request_failure");
  bind(m.nv_inference_count, "nv_inference_count");
  bind(m.nv_inference_exec_count, "nv_inference_exec_count");
  bind(m.nv_inference_request_duration_us, "nv_inference_request_duration_us");
  bind(m.nv_inference_queue_duration_us, "nv_inference_queue_duration_us");
  bind(m.nv_inference_compute_input_duration_us, "nv_inference_compute_input_duration_us");
  bind(m.nv_inference_compute_infer_duration_us, "nv_inference_compute_infer_duration_us");
  bind(m.nv_inference_compute_output_duration_us, "nv_inference_compute_output_duration_us");
  bind(m.nv_inference_pending_request_count, "nv_inference_pending_request_count");
  bind(m.nv_gpu_utilization, "nv_gpu_utilization");
  bind(m.nv_gpu_memory_total_bytes, "nv_gpu_memory_total_bytes");
  bind(m.nv_gpu_memory_used_bytes, "nv_gpu_memory_used_bytes");
  bind(m.nv_gpu_power_usage, "nv_gpu_power_usage");
  bind(m.nv_gpu_power_limit, "nv_gpu_power_limit");
  bind(m.nv_energy_consumption, "nv_energy_consumption");
  bind(m.nv_cpu_utilization, "nv_cpu_utilization");
  bind(m.nv_cpu_memory_total_bytes, "nv_cpu_memory_total_bytes");
  bind(m.nv_cpu_memory_used_bytes, "nv_cpu_memory_used_bytes");
  bind(m.inference_executions_total, "gpuhive_inference_executions_total");
  bind(m.inference_count_total, "gpuhive_inference_count_total");
  bind(m.queue_duration_seconds, "gpuhive_queue_duration_seconds");
  bind(m.compute_duration_seconds, "gpuhive_compute_duration_seconds");
  bind(m.request_duration_seconds, "gpuhive_request_duration_seconds");
  bind(m.batch_size, "gpuhive_batch_size");
  bind(m.queue_depth, "gpuhive_queue_depth");
  bind(m.device_memory_bytes, "gpuhive_device_memory_bytes");
  bind(m.device_memory_budget_bytes, "gpuhive_device_memory_budget_bytes");
  bind(m.model_memory_bytes, "gpuhive_model_memory_bytes");
  bind(m.model_h2d_bytes_total, "gpuhive_model_host_to_device_bytes_total");
  bind(m.model_h2d_seconds_total, "gpuhive_model_host_to_device_seconds_total");
  bind(m.model_precision_error, "gpuhive_model_precision_error");
  bind(m.pool_reserved_bytes, "gpuhive_pool_reserved_bytes");
  bind(m.pool_in_use_bytes, "gpuhive_pool_in_use_bytes");
  bind(m.pool_fragmentation_ratio, "gpuhive_pool_fragmentation_ratio");
  bind(m.model_loads_total, "gpuhive_model_loads_total");
  bind(m.model_evictions_total, "gpuhive_model_evictions_total");
  bind(m.model_swaps_total, "gpuhive_model_swaps_total");
  bind(m.swap_duration_seconds, "gpuhive_swap_duration_seconds");
  bind(m.model_resident, "gpuhive_model_resident");
  bind(m.cpu_fallback, "gpuhive_cpu_fallback");
  bind(m.residency_acquires_total, "gpuhive_residency_acquires_total");
  bind(m.residency_hits_total, "gpuhive_residency_hits_total");
  bind(m.residency_bytes_swapped_in_total, "gpuhive_residency_bytes_swapped_in_total");
  bind(m.preloads_total, "gpuhive_preloads_total");
  bind(m.memory_pressure_events_total, "gpuhive_memory_pressure_events_total");
  bind(m.h2d_bandwidth_bytes_per_second, "gpuhive_host_to_device_bandwidth_bytes_per_second");
  bind(m.tenant_device_seconds_total, "gpuhive_tenant_device_seconds_total");
  bind(m.device_busy_seconds_total, "gpuhive_device_busy_seconds_total");
  bind(m.batch_memory_allowance_bytes, "gpuhive_batch_memory_allowance_bytes");
  bind(m.batch_memory_held_bytes, "gpuhive_batch_memory_held_bytes");
  bind(m.gpu_utilization_ratio, "gpuhive_gpu_utilization_ratio");
  bind(m.gpu_memory_used_bytes, "gpuhive_gpu_memory_used_bytes");
  bind(m.gpu_memory_total_bytes, "gpuhive_gpu_memory_total_bytes");
  bind(m.gpu_temperature_celsius, "gpuhive_gpu_temperature_celsius");
  bind(m.gpu_power_watts, "gpuhive_gpu_power_watts");
  bind(m.gpu_power_limit_watts, "gpuhive_gpu_power_limit_watts");
  bind(m.gpu_clock_hertz, "gpuhive_gpu_clock_hertz");
  bind(m.gpu_throttle, "gpuhive_gpu_throttle");
  bind(m.gpu_ecc_errors_total, "gpuhive_gpu_ecc_errors_total");
  bind(m.gpu_pcie_bytes_per_second, "gpuhive_gpu_pcie_bytes_per_second");
  bind(m.gpu_health, "gpuhive_gpu_health");
  bind(m.gpu_info, "gpuhive_gpu_info");
  bind(m.process_resident_memory_bytes, "gpuhive_process_resident_memory_bytes");
  bind(m.process_cpu_seconds_total, "gpuhive_process_cpu_seconds_total");
  bind(m.host_memory_total_bytes, "gpuhive_host_memory_total_bytes");
  bind(m.host_memory_available_bytes, "gpuhive_host_memory_available_bytes");
  bind(m.http_requests_total, "gpuhive_http_requests_total");
  bind(m.grpc_requests_total, "gpuhive_grpc_requests_total");
  bind(m.http_refusals_total, "gpuhive_http_refusals_total");
  RETURN_IF_ERROR(st);
  return m;
}

}  // namespace gpuhive::monitor
