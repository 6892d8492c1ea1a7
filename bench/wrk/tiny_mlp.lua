-- wrk -s bench/wrk/tiny_mlp.lua: KServe v2 JSON infer of tiny_mlp (one row of 16 floats).
wrk.method = "POST"
wrk.path = "/v2/models/tiny_mlp/infer"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"inputs":[{"name":"INPUT0","shape":[1,16],"datatype":"FP32","data":[0,0.25,0.5,0.75,1,1.25,1.5,1.75,2,2.25,2.5,2.75,3,3.25,3.5,3.75]}]}'

done = function(summary, latency, requests)
  io.write(string.format("requests/s %.0f  p50 %.0f us  p99 %.0f us  errors %d (status %d)\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    summary.errors.status))
end
