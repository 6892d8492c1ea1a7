// Turns run results into the load generator's outputs: a JSON report (per mode: per stream and
// per model throughput, exact latency percentiles, errors by kind; per device memory peaks; a
// comparison section when several modes ran), and a report directory with report.md, data
// files and gnuplot PNGs.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "cli/loadgen/runner.h"
#include "cli/loadgen/scenario.h"
#include "gpuhive/status.h"

namespace gpuhive::loadgen {

// Only requests due inside [warmup_s, duration_s) are reported; totals cover everything sent.
nlohmann::json BuildReport(const Scenario& scenario, const std::vector<RunResult>& runs);

// Short human-readable summary of a report (what the command prints at the end).
std::string ReportText(const nlohmann::json& report);

// Writes report.md, report.json, data/*.dat, plots.gp and (when gnuplot is on PATH) *.png into
// `dir` (created). A missing gnuplot or a failing plot is noted in report.md, not an error.
// Errors: kUnavailable when the directory or a file cannot be written.
Status WriteReportDir(const Scenario& scenario, const std::vector<RunResult>& runs,
                      const nlohmann::json& report, const std::string& dir);

}  // namespace gpuhive::loadgen
