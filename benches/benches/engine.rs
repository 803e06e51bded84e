//! Engine benchmarks: decision time by rule shape at 1..10,000 rules (request matching the
//! first rule, the last rule, none), compile time for 10,000 rules, and the speed-up over the
//! naive reference evaluator. Criterion measures each point; a same-run summary table with
//! the ratio time(10k)/time(10) is printed at the end for BENCHMARKS.md.
//!
//! Run: `cargo bench -p benches --bench engine` (about two minutes on two cores).

use std::hint::black_box;
use std::time::{Duration, Instant};

use benches::engine_shapes::{config, engine, expected, policies, probe, Position, Shape};
use criterion::{criterion_group, BenchmarkId, Criterion};
use spiffe_authz::engine::{Engine, Request};

#[path = "../../filter/tests/engine_support/mod.rs"]
mod engine_support;

#[path = "../../filter/tests/engine_reference/mod.rs"]
mod engine_reference;

const SIZES: [usize; 5] = [1, 10, 100, 1000, 10_000];

fn quick(c: &mut Criterion) -> Criterion {
    std::mem::take(c)
        .sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_millis(300))
}

fn decide(c: &mut Criterion) {
    for shape in Shape::ALL {
        let mut group = c.benchmark_group(format!("decide/{}", shape.name()));
        for n in SIZES {
            let engine = engine(shape, n);
            for position in Position::ALL {
                let p = probe(shape, n, position);
                let got = p.decide(&engine).to_string();
                assert_eq!(
                    got,
                    expected(shape, n, position),
                    "{shape:?} n={n} {position:?}"
                );
                p.with_request(|r| {
                    group.bench_with_input(BenchmarkId::new(position.name(), n), r, |b, r| {
                        b.iter(|| engine.decide(black_box(r)))
                    });
                });
            }
        }
        group.finish();
    }
}

fn compile(c: &mut Criterion) {
    let mut group = c.benchmark_group("compile_10000_rules");
    group.sample_size(10);
    for shape in [
        Shape::ExactPrincipals,
        Shape::PathTemplates,
        Shape::RealisticMix,
    ] {
        let ps = policies(shape, 10_000);
        let cfg = config();
        group.bench_function(shape.name(), |b| {
            b.iter(|| Engine::compile(black_box(&ps), &cfg).map(|(e, _)| e))
        });
    }
    group.finish();
}

/// Best per-decision time over several batches (robust to noise from other processes).
fn per_decision(engine: &Engine, r: &Request<'_>) -> f64 {
    let mut batch = 1usize;
    // Grow the batch to about 2 ms.
    loop {
        let t = Instant::now();
        for _ in 0..batch {
            black_box(engine.decide(black_box(r)));
        }
        if t.elapsed() > Duration::from_millis(2) || batch > 1 << 24 {
            break;
        }
        batch *= 2;
    }
    (0..9)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..batch {
                black_box(engine.decide(black_box(r)));
            }
            t.elapsed().as_nanos() as f64 / batch as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn summary() {
    println!("\n## decide: ns per decision (best of 9 batches), same run\n");
    println!("| shape | request | 1 | 10 | 100 | 1000 | 10000 | 10k/10 |");
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for shape in Shape::ALL {
        let engines: Vec<Engine> = SIZES.iter().map(|&n| engine(shape, n)).collect();
        for position in Position::ALL {
            let times: Vec<f64> = SIZES
                .iter()
                .zip(&engines)
                .map(|(&n, e)| probe(shape, n, position).with_request(|r| per_decision(e, r)))
                .collect();
            let cells: Vec<String> = times.iter().map(|t| format!("{t:.0}")).collect();
            println!(
                "| {} | {} | {} | {:.1} |",
                shape.name(),
                position.name(),
                cells.join(" | "),
                times[4] / times[1]
            );
        }
    }

    println!("\n## compile: 10,000 rules\n");
    println!("| shape | ms |");
    println!("|---|---:|");
    for shape in Shape::ALL {
        let ps = policies(shape, 10_000);
        let cfg = config();
        let best = (0..3)
            .map(|_| {
                let t = Instant::now();
                black_box(Engine::compile(&ps, &cfg).map(|(e, _)| e).ok());
                t.elapsed().as_secs_f64() * 1e3
            })
            .fold(f64::INFINITY, f64::min);
        println!("| {} | {best:.1} |", shape.name());
    }

    println!("\n## speed-up over the naive reference evaluator (realistic_mix, last rule)\n");
    println!("| rules | reference ns | engine ns | speed-up |");
    println!("|---:|---:|---:|---:|");
    for n in [10, 100, 1000] {
        let ps = policies(Shape::RealisticMix, n);
        let cfg = config();
        let e = engine(Shape::RealisticMix, n);
        let p = probe(Shape::RealisticMix, n, Position::Last);
        let mut r = engine_support::req()
            .principal(p.principal.as_deref().unwrap_or_default())
            .peer_ip(&p.peer.to_string())
            .client_ip(&p.peer.to_string())
            .path(&p.path)
            .host("svc.bench")
            .port(8080);
        for (k, v) in &p.headers {
            r = r.header(k, v);
        }
        let want = p.decide(&e).to_string();
        assert_eq!(
            engine_reference::decide(&ps, &cfg, &r),
            want,
            "reference agrees"
        );
        let rounds = 200;
        let t = Instant::now();
        for _ in 0..rounds {
            black_box(engine_reference::decide(
                black_box(&ps),
                &cfg,
                black_box(&r),
            ));
        }
        let reference = t.elapsed().as_nanos() as f64 / rounds as f64;
        let fast = p.with_request(|req| per_decision(&e, req));
        println!(
            "| {n} | {reference:.0} | {fast:.0} | {:.0}x |",
            reference / fast
        );
    }
}

fn configured(c: &mut Criterion) {
    let mut c = quick(c);
    decide(&mut c);
    compile(&mut c);
}

criterion_group!(benches, configured);

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    summary();
}
