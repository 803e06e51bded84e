//! `host-sim bench`: a module under a request mix, side by side in one run with a pass-through
//! module as the floor, so the ratio shows what the plugin itself costs on top of the host.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::facts::{Connection, Request};
use crate::{Error, HostBuilder};

/// One module to measure.
pub struct Subject {
    pub label: String,
    pub host: HostBuilder,
    pub configuration: Vec<u8>,
}

/// The figures of one module.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Figures {
    pub label: String,
    pub compile_ms: f64,
    /// Instantiating from the pre-linked template plus `_initialize`.
    pub instantiate_us: f64,
    /// Canary + worker configure (what a config push costs).
    pub configure_ms: f64,
    pub requests: u64,
    pub requests_per_second: f64,
    pub ns_per_request: f64,
    pub hostcalls_per_request: f64,
    pub allowed: u64,
    pub denied: u64,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub mix: usize,
    pub subject: Figures,
    pub floor: Figures,
    /// subject ns/request divided by floor ns/request.
    pub ratio: f64,
}

struct Running {
    figures: Figures,
    plugin: crate::Plugin,
    elapsed: Duration,
    hostcalls: u64,
}

fn start(subject: Subject) -> Result<Running, Error> {
    let host = subject.host.build()?;
    let started = Instant::now();
    let plugin = host.configure(&subject.configuration)?;
    let configure = started.elapsed();
    Ok(Running {
        figures: Figures {
            label: subject.label,
            compile_ms: host.compile_time().as_secs_f64() * 1e3,
            instantiate_us: plugin.instantiate_time().as_secs_f64() * 1e6,
            configure_ms: configure.as_secs_f64() * 1e3,
            requests: 0,
            requests_per_second: 0.0,
            ns_per_request: 0.0,
            hostcalls_per_request: 0.0,
            allowed: 0,
            denied: 0,
        },
        plugin,
        elapsed: Duration::ZERO,
        hostcalls: 0,
    })
}

fn batch(run: &mut Running, mix: &[(Connection, Request)], count: usize) -> Result<(), Error> {
    let started = Instant::now();
    for (connection, request) in mix.iter().cycle().take(count) {
        let out = run
            .plugin
            .http_request(connection.clone(), request.clone())?;
        run.hostcalls += out.hostcalls;
        if out.allowed() {
            run.figures.allowed += 1;
        } else {
            run.figures.denied += 1;
        }
    }
    run.elapsed += started.elapsed();
    run.figures.requests += count as u64;
    Ok(())
}

fn finish(mut run: Running) -> Figures {
    let n = run.figures.requests.max(1) as f64;
    let secs = run.elapsed.as_secs_f64().max(1e-9);
    run.figures.ns_per_request = secs * 1e9 / n;
    run.figures.requests_per_second = n / secs;
    run.figures.hostcalls_per_request = run.hostcalls as f64 / n;
    run.figures
}

/// Runs the mix through both modules in alternating batches until each has had `budget` of
/// measured time (after a warm-up batch), so drift hits both alike.
pub fn run(
    subject: Subject,
    floor: Subject,
    mix: &[(Connection, Request)],
    budget: Duration,
) -> Result<Report, Error> {
    let mut a = start(subject)?;
    let mut b = start(floor)?;
    let batch_size = mix.len().max(1) * 50;
    batch(&mut a, mix, batch_size)?;
    batch(&mut b, mix, batch_size)?;
    for run in [&mut a, &mut b] {
        run.elapsed = Duration::ZERO;
        run.hostcalls = 0;
        run.figures.requests = 0;
        run.figures.allowed = 0;
        run.figures.denied = 0;
    }
    while a.elapsed < budget || b.elapsed < budget {
        batch(&mut a, mix, batch_size)?;
        batch(&mut b, mix, batch_size)?;
    }
    let subject = finish(a);
    let floor = finish(b);
    let ratio = subject.ns_per_request / floor.ns_per_request.max(1e-9);
    Ok(Report {
        mix: mix.len(),
        subject,
        floor,
        ratio,
    })
}

impl Report {
    /// The table `host-sim bench` prints.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{:<28} {:>10} {:>13} {:>12} {:>12} {:>10} {:>11} {:>9}",
            "module",
            "compile ms",
            "instantiate us",
            "configure ms",
            "req/s",
            "ns/req",
            "hostcalls",
            "allowed"
        );
        for f in [&self.floor, &self.subject] {
            let _ = writeln!(
                s,
                "{:<28} {:>10.1} {:>13.1} {:>12.2} {:>12.0} {:>10.0} {:>11.1} {:>4}/{:<4}",
                f.label,
                f.compile_ms,
                f.instantiate_us,
                f.configure_ms,
                f.requests_per_second,
                f.ns_per_request,
                f.hostcalls_per_request,
                f.allowed,
                f.requests
            );
        }
        let _ = writeln!(
            s,
            "ratio {} / {}: {:.2}x ns per request ({} request kinds in the mix)",
            self.subject.label, self.floor.label, self.ratio, self.mix
        );
        s
    }
}
