//! Benchmark of webhook intake (docs/SPEC.md §16), one run on loopback against a real `pipewright serve`:
//! signed GitHub push deliveries (the corpus payload, each with its own delivery id) posted by 16
//! concurrent clients; each answered 202 only once verified, parsed and kept in the database. Reports
//! deliveries per second, p50/p99 latency, and checks that every one was kept (none lost). Baseline,
//! measured in the same run with the same client: `GET /healthz` (the HTTP round trip alone).
//! Budget: ≥ 500 deliveries/s, p99 < 50 ms, none lost.
//!
//! The deliveries name the configured repository, so the server also decides them (mirror fetch,
//! build file, trigger match) while the benchmark runs, as it would in use; the build file has no
//! trigger for the benchmark's branch, so nothing is built.
//!
//! Needs the Docker engine (the server connects at start). Run: `cargo bench --bench intake`.

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};

const DELIVERIES: usize = 3000;
const CLIENTS: usize = 16;
const SECRET: &str = "bench-secret";

fn main() {
    let data = tempfile::tempdir().expect("tempdir");
    let repo = data.path().join("repo");
    git(&repo, &["init", "-q", "-b", "main", &repo.display().to_string()]);
    std::fs::write(
        repo.join("cloudbuild.yaml"),
        "steps: [{name: local/busybox:1, args: ['true']}]\ntriggers: [{name: release, event: push, branch: '^release$'}]\n",
    )
    .expect("write");
    git(&repo, &["-C", &repo.display().to_string(), "add", "-A"]);
    git(&repo, &["-C", &repo.display().to_string(), "commit", "-q", "-m", "bench"]);
    let sha = String::from_utf8(
        Command::new("git")
            .args(["-C", &repo.display().to_string(), "rev-parse", "HEAD"])
            .output()
            .expect("git")
            .stdout,
    )
    .expect("utf8")
    .trim()
    .to_string();

    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port();
    let config = data.path().join("server.yaml");
    std::fs::write(
        &config,
        format!(
            "maxBuilds: 1\nrepositories:\n- name: acme/bench\n  url: '{}'\n  webhookSecret: env:BENCH_SECRET\n",
            repo.display()
        ),
    )
    .expect("config");
    let mut server = Command::new(env!("CARGO_BIN_EXE_pipewright"))
        .args(["serve", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(data.path())
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("BENCH_SECRET", SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("pipewright serve");
    let base = format!("http://127.0.0.1:{port}");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let http = reqwest::Client::builder().pool_max_idle_per_host(CLIENTS).build().expect("client");
    runtime.block_on(async {
        for _ in 0..300 {
            if http.get(format!("{base}/healthz")).send().await.is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the server did not start (is Docker running?)");
    });

    let payload =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/webhooks/github/push__branch.json"))
            .expect("payload");
    let mut payload: serde_json::Value = serde_json::from_slice(&payload).expect("json");
    payload["repository"]["full_name"] = serde_json::json!("acme/bench");
    payload["ref"] = serde_json::json!("refs/heads/main");
    payload["after"] = serde_json::json!(sha);
    let body = serde_json::to_vec(&payload).expect("json");
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(&body);
    let signature = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    let body = bytes::Bytes::from(body);

    // Warm up both paths (the warm-up deliveries are kept too, and counted).
    const WARM_UP: usize = 100;
    runtime.block_on(fire(&http, &base, WARM_UP, None));
    runtime.block_on(fire(&http, &base, WARM_UP, Some((&body, &signature))));
    let (baseline_secs, baseline) = runtime.block_on(fire(&http, &base, DELIVERIES, None));
    let (secs, latencies) = runtime.block_on(fire(&http, &base, DELIVERIES, Some((&body, &signature))));

    let db = runtime.block_on(pipewright::io::store::db::Database::open(data.path())).expect("database");
    let kept = runtime.block_on(db.delivery_count()).expect("count") as usize - WARM_UP;
    let _ = server.kill();
    let _ = server.wait();

    let rate = DELIVERIES as f64 / secs;
    let baseline_rate = DELIVERIES as f64 / baseline_secs;
    let (p50, p99) = (percentile(&latencies, 0.50), percentile(&latencies, 0.99));
    let (b50, b99) = (percentile(&baseline, 0.50), percentile(&baseline, 0.99));
    println!();
    println!("| benchmark | pipewright | baseline (GET /healthz) | budget |");
    println!("| --- | --- | --- | --- |");
    println!("| deliveries/s ({DELIVERIES}, {CLIENTS} clients) | {rate:.0} | {baseline_rate:.0} | ≥ 500 |");
    println!("| p50 latency | {:.1} ms | {:.1} ms | |", p50 * 1e3, b50 * 1e3);
    println!("| p99 latency | {:.1} ms | {:.1} ms | < 50 ms |", p99 * 1e3, b99 * 1e3);
    println!("| kept in the database | {kept} of {DELIVERIES} | | all |");
    let mut over = Vec::new();
    if rate < 500.0 {
        over.push(format!("{rate:.0} deliveries/s < 500"));
    }
    if p99 > 0.050 {
        over.push(format!("p99 {:.1} ms > 50 ms", p99 * 1e3));
    }
    if kept != DELIVERIES {
        over.push(format!("{} deliveries lost", DELIVERIES - kept));
    }
    if !over.is_empty() {
        eprintln!("over budget: {}", over.join("; "));
        std::process::exit(1);
    }
}

/// `n` requests from `CLIENTS` concurrent clients: signed deliveries, or `GET /healthz` without a body.
/// Returns the wall time and each request's latency.
async fn fire(
    http: &reqwest::Client,
    base: &str,
    n: usize,
    delivery: Option<(&bytes::Bytes, &str)>,
) -> (f64, Vec<f64>) {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..CLIENTS {
        let (http, base, next) = (http.clone(), base.to_string(), next.clone());
        let delivery = delivery.map(|(b, s)| (b.clone(), s.to_string()));
        clients.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < n {
                let t = Instant::now();
                let status = match &delivery {
                    Some((body, signature)) => http
                        .post(format!("{base}/hooks/github"))
                        .header("content-type", "application/json")
                        .header("x-github-event", "push")
                        .header("x-github-delivery", uuid::Uuid::new_v4().to_string())
                        .header("x-hub-signature-256", signature)
                        .body(body.clone())
                        .send()
                        .await
                        .map(|r| r.status().as_u16()),
                    None => http.get(format!("{base}/healthz")).send().await.map(|r| r.status().as_u16()),
                };
                let expected = if delivery.is_some() { 202 } else { 200 };
                assert_eq!(status.ok(), Some(expected), "a request failed");
                latencies.push(t.elapsed().as_secs_f64());
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for client in clients {
        all.extend(client.await.expect("client"));
    }
    (started.elapsed().as_secs_f64(), all)
}

fn percentile(values: &[f64], q: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

fn git(_repo: &std::path::Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .env("GIT_AUTHOR_NAME", "bench")
        .env("GIT_AUTHOR_EMAIL", "bench@example.com")
        .env("GIT_COMMITTER_NAME", "bench")
        .env("GIT_COMMITTER_EMAIL", "bench@example.com")
        .status()
        .expect("git");
    assert!(status.success(), "git {args:?}");
}
