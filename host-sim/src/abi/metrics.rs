//! Metrics: Envoy stats in the `wasmcustom` namespace, shared by every VM of the host.

use wasmtime::Linker;

use super::{enter, read, status, write_u32, write_u64, Cx, HostResult, Status};
use crate::effects::MetricValue;
use crate::state::{lock, HostState, MetricType};

pub(super) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_define_metric",
        |mut c: Cx<'_>, kind: i32, np: i32, nl: i32, ret: i32| {
            status(define(&mut c, kind, np, nl, ret))
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_increment_metric",
        |mut c: Cx<'_>, id: i32, offset: i64| status(increment(&mut c, id, offset)),
    )?;
    linker.func_wrap(
        "env",
        "proxy_record_metric",
        |mut c: Cx<'_>, id: i32, value: i64| status(record(&mut c, id, value)),
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_metric",
        |mut c: Cx<'_>, id: i32, ret: i32| status(get(&mut c, id, ret)),
    )?;
    Ok(())
}

/// A new id every call (counters 4, 8…, gauges 5, 9…, histograms 6, 10…, cpp-host `wasm.h`);
/// the same name is the same underlying stat.
fn define(c: &mut Cx<'_>, kind: i32, np: i32, nl: i32, ret: i32) -> HostResult {
    enter(c, "proxy_define_metric", false)?;
    let (kind, offset) = match kind {
        0 => (MetricType::Counter, 0),
        1 => (MetricType::Gauge, 1),
        2 => (MetricType::Histogram, 2),
        _ => return Err(Status::BadArgument.into()),
    };
    let name = String::from_utf8_lossy(&read(c, np, nl)?).into_owned();
    let state = c.data_mut();
    let slot = state
        .next_metric_id
        .get_mut(offset as usize)
        .ok_or(Status::BadArgument)?;
    *slot = slot.wrapping_add(1);
    let id = slot.wrapping_mul(4).wrapping_add(offset);
    lock(&state.shared)
        .metrics
        .entry(name.clone())
        .or_insert_with(|| match kind {
            MetricType::Counter => MetricValue::Counter(0),
            MetricType::Gauge => MetricValue::Gauge(0),
            MetricType::Histogram => MetricValue::Histogram(Vec::new()),
        });
    state.metric_defs.insert(id, (kind, name));
    write_u32(c, ret, id)
}

fn with_metric(
    c: &mut Cx<'_>,
    id: i32,
    f: impl FnOnce(&mut MetricValue) -> Result<u64, Status>,
) -> Result<u64, Status> {
    let state = c.data_mut();
    let (_, name) = state
        .metric_defs
        .get(&(id as u32))
        .ok_or(Status::NotFound)?;
    let mut shared = lock(&state.shared);
    let value = shared.metrics.get_mut(name).ok_or(Status::NotFound)?;
    f(value)
}

/// Counters only go up (offset <= 0 is BAD_ARGUMENT); gauges add; histograms refuse.
fn increment(c: &mut Cx<'_>, id: i32, offset: i64) -> HostResult {
    enter(c, "proxy_increment_metric", false)?;
    with_metric(c, id, |m| {
        match m {
            MetricValue::Counter(v) if offset > 0 => *v = v.saturating_add(offset as u64),
            MetricValue::Gauge(v) => *v = v.saturating_add(offset),
            _ => return Err(Status::BadArgument),
        }
        Ok(0)
    })?;
    Ok(())
}

/// Counter: adds; gauge: sets; histogram: records a sample.
fn record(c: &mut Cx<'_>, id: i32, value: i64) -> HostResult {
    enter(c, "proxy_record_metric", false)?;
    with_metric(c, id, |m| {
        match m {
            MetricValue::Counter(v) => *v = v.saturating_add(value as u64),
            MetricValue::Gauge(v) => *v = value,
            MetricValue::Histogram(samples) => samples.push(value as u64),
        }
        Ok(0)
    })?;
    Ok(())
}

fn get(c: &mut Cx<'_>, id: i32, ret: i32) -> HostResult {
    enter(c, "proxy_get_metric", false)?;
    let value = with_metric(c, id, |m| match m {
        MetricValue::Counter(v) => Ok(*v),
        MetricValue::Gauge(v) => Ok(*v as u64),
        MetricValue::Histogram(_) => Err(Status::BadArgument),
    })?;
    write_u64(c, ret, value)
}
