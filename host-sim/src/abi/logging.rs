//! Logging, log level, time and the tick timer.

use wasmtime::Linker;

use super::{enter, read, status, write_u32, write_u64, Cx, HostResult, Status};
use crate::effects::LogLevel;
use crate::state::{HostState, Tick};

pub(super) fn link(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        "env",
        "proxy_log",
        |mut c: Cx<'_>, level: i32, ptr: i32, len: i32| status(log(&mut c, level, ptr, len)),
    )?;
    linker.func_wrap("env", "proxy_get_log_level", |mut c: Cx<'_>, ret: i32| {
        status(get_log_level(&mut c, ret))
    })?;
    linker.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut c: Cx<'_>, ret: i32| status(current_time(&mut c, ret)),
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut c: Cx<'_>, period: i32| status(set_tick_period(&mut c, period)),
    )?;
    Ok(())
}

fn log(c: &mut Cx<'_>, level: i32, ptr: i32, len: i32) -> HostResult {
    enter(c, "proxy_log", true)?;
    let level = LogLevel::from_abi(level).ok_or(Status::BadArgument)?;
    let message = read(c, ptr, len)?;
    c.data_mut()
        .log(level, String::from_utf8_lossy(&message).into_owned());
    Ok(())
}

fn get_log_level(c: &mut Cx<'_>, ret: i32) -> HostResult {
    enter(c, "proxy_get_log_level", false)?;
    let level = c.data().settings.log_level as u32;
    write_u32(c, ret, level)
}

fn current_time(c: &mut Cx<'_>, ret: i32) -> HostResult {
    enter(c, "proxy_get_current_time_nanoseconds", false)?;
    let now = c.data().now_ns();
    write_u64(c, ret, now)
}

/// Sets the period for the caller's root context (`root_context()->id()`); 0 disables; the
/// first tick comes one period after setting.
fn set_tick_period(c: &mut Cx<'_>, period_ms: i32) -> HostResult {
    enter(c, "proxy_set_tick_period_milliseconds", false)?;
    let state = c.data_mut();
    let root = state.root_id;
    let period_ns = u64::from(period_ms as u32) * 1_000_000;
    if period_ns == 0 {
        state.ticks.remove(&root);
    } else {
        let next_due_ns = state.now_ns().saturating_add(period_ns);
        state.ticks.insert(
            root,
            Tick {
                period_ns,
                next_due_ns,
            },
        );
    }
    Ok(())
}
