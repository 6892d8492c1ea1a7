// Every metric family gpuhive exports, defined in one place. The core (scheduler, residency
// manager, workers), the monitors and the frontends record into the families returned by
// RegisterGpuhiveMetrics(); the Grafana dashboard test checks its queries against AllMetricDefs().
#pragma once

#include <string>
#include <vector>

#include "gpuhive/monitor/metrics.h"
#include "gpuhive/status.h"

namespace gpuhive::monitor {

struct MetricDef {
  const char* name;
  MetricType type;
  const char* help;
  std::vector<std::string> labels;
  std::vector<double> buckets;  // histograms only
};

// The full list, in a stable order.
const std::vector<MetricDef>& AllMetricDefs();

// Pointers into a Registry for every family of AllMetricDefs(); valid as long as the registry.
struct GpuhiveMetrics {
  // Requests: outcome is "success" or the failing StatusCodeName() ("InvalidArgument",
  // "ResourceExhausted", "Unavailable", "DeadlineExceeded", ...).
  CounterFamily* inference_requests_total;      // {model, version, outcome}
  CounterFamily* inference_executions_total;    // {model, version}: batches run
  CounterFamily* inference_count_total;         // {model, version}: inferences (batch items) run
  HistogramFamily* queue_duration_seconds;      // {model}
  HistogramFamily* compute_duration_seconds;    // {model}
  HistogramFamily* request_duration_seconds;    // {model}: end to end in the server
  HistogramFamily* batch_size;                  // {model}
  GaugeFamily* queue_depth;                     // {model}
  // Memory.
  GaugeFamily* device_memory_bytes;             // {device, kind}: weights|activations|workspace|io
  GaugeFamily* device_memory_budget_bytes;      // {device}
  GaugeFamily* model_memory_bytes;              // {model, device}
  CounterFamily* model_h2d_bytes_total;          // {model, device}: weight bytes its swap-ins copied
  CounterFamily* model_h2d_seconds_total;        // {model, device}: time those copies took
  GaugeFamily* model_precision_error;           // {model, precision}: INT8 vs FP32 relative L2 at load
  GaugeFamily* pool_reserved_bytes;             // {device}
  GaugeFamily* pool_in_use_bytes;               // {device}
  GaugeFamily* pool_fragmentation_ratio;        // {device}
  // Residency.
  CounterFamily* model_loads_total;             // {model}
  CounterFamily* model_evictions_total;         // {model}
  CounterFamily* model_swaps_total;             // {model, direction}: in|out
  HistogramFamily* swap_duration_seconds;       // {model, direction}
  GaugeFamily* model_resident;                  // {model, device}: 1 when resident; device: where placed
  GaugeFamily* cpu_fallback;                    // {}: 1 when no usable GPU made models run on the CPU
  // Residency aggregates (mirrors of ResidencyStats, set on scrape).
  CounterFamily* residency_acquires_total;      // {device}
  CounterFamily* residency_hits_total;          // {device}
  CounterFamily* residency_bytes_swapped_in_total;  // {device}
  CounterFamily* preloads_total;                // {device, outcome}: done|hit|wasted
  CounterFamily* memory_pressure_events_total;  // {device, action}
  GaugeFamily* h2d_bandwidth_bytes_per_second;  // {device}
  // Scheduler.
  CounterFamily* tenant_device_seconds_total;   // {tenant}
  CounterFamily* device_busy_seconds_total;     // {device}
  GaugeFamily* batch_memory_allowance_bytes;    // {device}: SchedulerOptions::batch_memory resolved
  GaugeFamily* batch_memory_held_bytes;         // {device}
  // GPU (NVML).
  GaugeFamily* gpu_utilization_ratio;           // {gpu}
  GaugeFamily* gpu_memory_used_bytes;           // {gpu}
  GaugeFamily* gpu_memory_total_bytes;          // {gpu}
  GaugeFamily* gpu_temperature_celsius;         // {gpu}
  GaugeFamily* gpu_power_watts;                 // {gpu}
  GaugeFamily* gpu_power_limit_watts;           // {gpu}
  GaugeFamily* gpu_clock_hertz;                 // {gpu, clock}: sm|mem
  GaugeFamily* gpu_throttle;                    // {gpu, reason}
  CounterFamily* gpu_ecc_errors_total;          // {gpu, type}: corrected|uncorrected
  GaugeFamily* gpu_pcie_bytes_per_second;       // {gpu, direction}: tx|rx
  GaugeFamily* gpu_health;                      // {gpu, state}: 1 for the current state
  GaugeFamily* gpu_info;                        // {gpu, name}: always 1
  // Host / process.
  GaugeFamily* process_resident_memory_bytes;
  CounterFamily* process_cpu_seconds_total;
  GaugeFamily* host_memory_total_bytes;
  GaugeFamily* host_memory_available_bytes;
  // Frontends.
  CounterFamily* http_requests_total;           // {method, route, code}
  CounterFamily* http_refusals_total;           // {reason}
  CounterFamily* grpc_requests_total;           // {method, code}
  // Triton's families (nv_*), with Triton's names, types, labels and meanings, next to gpuhive's own
  // so that Triton dashboards and alerts carry over. Durations are cumulative microseconds of
  // successful requests; failure reasons are Triton's: REJECTED, CANCELED, BACKEND, OTHER.
  CounterFamily* nv_inference_request_success;             // {model, version}
  CounterFamily* nv_inference_request_failure;             // {model, reason, version}
  CounterFamily* nv_inference_count;                       // {model, version}: batch items
  CounterFamily* nv_inference_exec_count;                  // {model, version}: batches
  CounterFamily* nv_inference_request_duration_us;         // {model, version}
  CounterFamily* nv_inference_queue_duration_us;           // {model, version}
  CounterFamily* nv_inference_compute_input_duration_us;   // {model, version}
  CounterFamily* nv_inference_compute_infer_duration_us;   // {model, version}
  CounterFamily* nv_inference_compute_output_duration_us;  // {model, version}
  GaugeFamily* nv_inference_pending_request_count;         // {model, version}
  GaugeFamily* nv_gpu_utilization;                         // {gpu_uuid}: 0..1
  GaugeFamily* nv_gpu_memory_total_bytes;                  // {gpu_uuid}
  GaugeFamily* nv_gpu_memory_used_bytes;                   // {gpu_uuid}
  GaugeFamily* nv_gpu_power_usage;                         // {gpu_uuid}: watts
  GaugeFamily* nv_gpu_power_limit;                         // {gpu_uuid}: watts
  CounterFamily* nv_energy_consumption;                    // {gpu_uuid}: joules since start
  GaugeFamily* nv_cpu_utilization;                         // 0..1 since the previous scrape
  GaugeFamily* nv_cpu_memory_total_bytes;
  GaugeFamily* nv_cpu_memory_used_bytes;
};

// Triton's failure reason (nv_inference_request_failure{reason}) for a request's error code.
const char* TritonFailureReason(StatusCode code);

// Registers every family (idempotent for one registry).
StatusOr<GpuhiveMetrics> RegisterGpuhiveMetrics(Registry* registry);

}  // namespace gpuhive::monitor
