//! `/metrics` in the Prometheus text format: webhook deliveries by result, builds by status, the queue.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::{Arc, Mutex};

use axum::extract::State as AxumState;
use axum::response::IntoResponse;

use super::State;
use crate::record::Status;

#[derive(Default)]
pub struct Metrics {
    deliveries: Mutex<BTreeMap<&'static str, u64>>,
    builds: Mutex<BTreeMap<&'static str, u64>>,
}

impl Metrics {
    pub fn count_delivery(&self, result: &'static str) {
        *self.deliveries.lock().expect("metrics lock").entry(result).or_default() += 1;
    }

    pub fn count_build(&self, status: Status) {
        *self.builds.lock().expect("metrics lock").entry(status.as_str()).or_default() += 1;
    }
}

pub async fn handler(AxumState(state): AxumState<Arc<State>>) -> impl IntoResponse {
    let mut out = String::new();
    let _ = writeln!(out, "# HELP pipewright_webhook_deliveries_total Webhook deliveries by result, since start.");
    let _ = writeln!(out, "# TYPE pipewright_webhook_deliveries_total counter");
    for (result, n) in state.metrics.deliveries.lock().expect("metrics lock").iter() {
        let _ = writeln!(out, "pipewright_webhook_deliveries_total{{result=\"{result}\"}} {n}");
    }
    let _ = writeln!(out, "# HELP pipewright_builds_finished_total Builds that ended, by status, since start.");
    let _ = writeln!(out, "# TYPE pipewright_builds_finished_total counter");
    for (status, n) in state.metrics.builds.lock().expect("metrics lock").iter() {
        let _ = writeln!(out, "pipewright_builds_finished_total{{status=\"{status}\"}} {n}");
    }
    let _ = writeln!(out, "# HELP pipewright_builds Builds known to the server, by status.");
    let _ = writeln!(out, "# TYPE pipewright_builds gauge");
    if let Ok(counts) = state.db.status_counts().await {
        for (status, n) in counts {
            let _ = writeln!(out, "pipewright_builds{{status=\"{status}\"}} {n}");
        }
    }
    let running = state.running.lock().expect("running lock").len();
    let _ = writeln!(out, "# HELP pipewright_builds_running Builds this server is running now.");
    let _ = writeln!(out, "# TYPE pipewright_builds_running gauge");
    let _ = writeln!(out, "pipewright_builds_running {running}");
    let _ = writeln!(out, "# HELP pipewright_build_slots The global build limit (maxBuilds).");
    let _ = writeln!(out, "# TYPE pipewright_build_slots gauge");
    let _ = writeln!(out, "pipewright_build_slots {}", state.config.max_builds);
    ([("content-type", "text/plain; version=0.0.4")], out)
}
