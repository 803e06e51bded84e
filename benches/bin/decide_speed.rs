//! The engine alone, timed the same way natively and inside wasm32-wasip1, so the two can be
//! compared on the same policies and requests. Prints one line per point:
//! `<shape>\t<position>\t<rules>\t<ns per decision>`.
//!
//! Natively: `cargo run --release -p benches --bin decide-speed`.
//! In wasm: `cargo build --release -p benches --bin decide-speed --target wasm32-wasip1`, then
//! `host-sim wasi-run target/wasm32-wasip1/release/decide-speed.wasm`.
//! `benches/wasm-vs-native.sh` runs both and prints the ratios (BENCHMARKS.md, Plugin).

use std::hint::black_box;
use std::time::{Duration, Instant};

use benches::engine_shapes::{engine, expected, probe, Position, Shape};
use spiffe_authz::engine::{Engine, Request};

const SIZES: [usize; 2] = [100, 1000];

/// Best per-decision time over several batches of about 2 ms: the minimum is the figure
/// least disturbed by other processes on a shared machine.
fn per_decision(engine: &Engine, r: &Request<'_>) -> f64 {
    let mut batch = 1usize;
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
    let mut best = f64::MAX;
    for _ in 0..9 {
        let t = Instant::now();
        for _ in 0..batch {
            black_box(engine.decide(black_box(r)));
        }
        best = best.min(t.elapsed().as_nanos() as f64 / batch as f64);
    }
    best
}

fn main() {
    for shape in Shape::ALL {
        for n in SIZES {
            let engine = engine(shape, n);
            for position in Position::ALL {
                let p = probe(shape, n, position);
                let got = p.decide(&engine).to_string();
                // A point that does not get the decision its name claims measures nothing.
                if got != expected(shape, n, position) {
                    eprintln!("{} {} {n}: got {got:?}", shape.name(), position.name());
                    std::process::exit(1);
                }
                let ns = p.with_request(|r| per_decision(&engine, r));
                println!("{}\t{}\t{n}\t{ns:.0}", shape.name(), position.name());
            }
        }
    }
}
