//! WASI preview1 as Envoy's host provides it (cpp-host `src/exports.cc`): stdout/stderr go to
//! the log, no environment, no arguments, no files, clocks and randomness work; nothing else.

use wasmtime::{FuncType, Linker, Val, ValType};

use super::{enter, read, write, write_u32, write_u64, Cx, Fail, HostResult};
use crate::effects::LogLevel;
use crate::state::HostState;

// WASI preview1 errno values, shared with `wasi_run` (a command module's host).
pub(crate) const SUCCESS: i32 = 0;
pub(crate) const BADF: i32 = 8;
pub(crate) const INVAL: i32 = 28;
pub(crate) const NOENT: i32 = 44;
pub(crate) const NOSYS: i32 = 52;
pub(crate) const NOTSUP: i32 = 58;
pub(crate) const FAULT: i32 = 21;

/// cpp-host caps `random_get` at 64 KiB.
const RANDOM_GET_MAX: usize = 64 * 1024;

fn errno(result: HostResult) -> wasmtime::Result<i32> {
    match result {
        Ok(()) => Ok(SUCCESS),
        Err(Fail::Status(_)) => Ok(FAULT),
        Err(Fail::Trap(e)) => Err(e),
    }
}

pub(super) fn link(linker: &mut Linker<HostState>, module: &str) -> wasmtime::Result<()> {
    linker.func_wrap(
        module,
        "fd_write",
        |mut c: Cx<'_>, fd: i32, iovs: i32, iovs_len: i32, nwritten: i32| match fd {
            1 | 2 => errno(fd_write(&mut c, fd, iovs, iovs_len, nwritten)),
            _ => Ok(BADF),
        },
    )?;
    linker.func_wrap(
        module,
        "environ_sizes_get",
        |mut c: Cx<'_>, count: i32, size: i32| {
            errno(zero_pair(&mut c, "environ_sizes_get", count, size))
        },
    )?;
    linker.func_wrap(module, "environ_get", |mut c: Cx<'_>, _: i32, _: i32| {
        errno(enter(&mut c, "environ_get", true))
    })?;
    linker.func_wrap(
        module,
        "args_sizes_get",
        |mut c: Cx<'_>, count: i32, size: i32| {
            errno(zero_pair(&mut c, "args_sizes_get", count, size))
        },
    )?;
    linker.func_wrap(module, "args_get", |mut c: Cx<'_>, _: i32, _: i32| {
        errno(enter(&mut c, "args_get", true))
    })?;
    linker.func_wrap(
        module,
        "clock_time_get",
        |mut c: Cx<'_>, id: i32, _precision: i64, ret: i32| {
            enter(&mut c, "clock_time_get", true).map_err(trap)?;
            let state = c.data();
            let now = match id {
                0 => state.now_ns(),
                // Monotonic: the test clock's offset from the start of this VM.
                1 => state.clock_offset_ns.saturating_add(1_000_000_000),
                _ => return Ok(NOTSUP),
            };
            errno(write_u64(&mut c, ret, now))
        },
    )?;
    linker.func_wrap(
        module,
        "clock_res_get",
        |mut c: Cx<'_>, id: i32, ret: i32| {
            enter(&mut c, "clock_res_get", true).map_err(trap)?;
            if !(0..=1).contains(&id) {
                return Ok(NOTSUP);
            }
            errno(write_u64(&mut c, ret, 1))
        },
    )?;
    linker.func_wrap(module, "random_get", |mut c: Cx<'_>, ptr: i32, len: i32| {
        enter(&mut c, "random_get", true).map_err(trap)?;
        let len = len as u32 as usize;
        if len > RANDOM_GET_MAX {
            return Ok(INVAL);
        }
        let mut bytes = Vec::with_capacity(len + 8);
        while bytes.len() < len {
            let word = c.data_mut().next_random();
            bytes.extend_from_slice(&word.to_le_bytes());
        }
        bytes.truncate(len);
        errno(write(&mut c, ptr, &bytes))
    })?;
    linker.func_wrap(module, "sched_yield", |mut c: Cx<'_>| {
        errno(enter(&mut c, "sched_yield", true))
    })?;
    linker.func_wrap(
        module,
        "poll_oneoff",
        |mut c: Cx<'_>, _in: i32, _out: i32, _n: i32, nevents: i32| {
            enter(&mut c, "poll_oneoff", true).map_err(trap)?;
            errno(write_u32(&mut c, nevents, 0))
        },
    )?;
    linker.func_wrap(
        module,
        "proc_exit",
        |mut c: Cx<'_>, code: i32| -> wasmtime::Result<()> {
            c.data_mut().hostcalls += 1;
            // cpp-host only logs; unwinding is what the guest expects from proc_exit, so trap.
            Err(wasmtime::format_err!("guest called proc_exit({code})"))
        },
    )?;
    linker.func_wrap(
        module,
        "fd_fdstat_get",
        |mut c: Cx<'_>, fd: i32, buf: i32| {
            enter(&mut c, "fd_fdstat_get", true).map_err(trap)?;
            if fd != 1 && fd != 2 {
                return Ok(BADF);
            }
            // fdstat: filetype u8 (2 = character device), flags u16, rights_base u64 = FD_WRITE.
            let mut stat = [0u8; 24];
            stat[0] = 2;
            stat[8..16].copy_from_slice(&(1u64 << 6).to_le_bytes());
            errno(write(&mut c, buf, &stat))
        },
    )?;
    for (name, params, result) in STUBS {
        stub(
            linker,
            module,
            name,
            params,
            *result,
            |c: &mut Cx<'_>, name| enter(c, name, true).map_err(trap),
        )?;
    }
    Ok(())
}

fn trap(fail: Fail) -> wasmtime::Error {
    match fail {
        Fail::Trap(e) => e,
        Fail::Status(s) => wasmtime::format_err!("host-sim internal: unexpected status {s:?}"),
    }
}

fn zero_pair(c: &mut Cx<'_>, name: &'static str, a: i32, b: i32) -> HostResult {
    enter(c, name, true)?;
    write_u32(c, a, 0)?;
    write_u32(c, b, 0)
}

/// stdout logs at info, stderr at error, one trailing newline stripped (cpp-host `fd_write`).
fn fd_write(c: &mut Cx<'_>, fd: i32, iovs: i32, iovs_len: i32, nwritten: i32) -> HostResult {
    enter(c, "fd_write", true)?;
    let mut text = Vec::new();
    for i in 0..iovs_len.max(0) {
        let iov = read(c, iovs.wrapping_add(i.wrapping_mul(8)), 8)?;
        let field = |at: usize| {
            iov.get(at..at + 4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_le_bytes)
                .unwrap_or(0)
        };
        text.extend(read(c, field(0) as i32, field(4) as i32)?);
    }
    write_u32(c, nwritten, u32::try_from(text.len()).unwrap_or(u32::MAX))?;
    if text.last() == Some(&b'\n') {
        text.pop();
    }
    let level = if fd == 1 {
        LogLevel::Info
    } else {
        LogLevel::Error
    };
    c.data_mut()
        .log(level, String::from_utf8_lossy(&text).into_owned());
    Ok(())
}

/// The rest of preview1: linkable, never useful (no files, no sockets), as in Envoy.
/// Params: `i` = i32, `I` = i64; every function returns an errno.
pub(crate) const STUBS: &[(&str, &str, i32)] = &[
    ("fd_read", "iiii", NOSYS),
    ("fd_seek", "iIii", BADF),
    ("fd_close", "i", SUCCESS),
    ("fd_fdstat_set_flags", "ii", NOSYS),
    ("fd_fdstat_set_rights", "iII", NOTSUP),
    ("fd_prestat_get", "ii", BADF),
    ("fd_prestat_dir_name", "iii", BADF),
    ("fd_filestat_get", "ii", BADF),
    ("fd_filestat_set_size", "iI", BADF),
    ("fd_filestat_set_times", "iIIi", BADF),
    ("fd_pread", "iiiIi", BADF),
    ("fd_pwrite", "iiiIi", BADF),
    ("fd_readdir", "iiiIi", BADF),
    ("fd_renumber", "ii", BADF),
    ("fd_sync", "i", BADF),
    ("fd_datasync", "i", BADF),
    ("fd_tell", "ii", BADF),
    ("fd_advise", "iIIi", BADF),
    ("fd_allocate", "iII", BADF),
    ("path_open", "iiiiiIIii", NOENT),
    ("path_filestat_get", "iiiii", NOENT),
    ("path_filestat_set_times", "iiiiIIi", NOENT),
    ("path_create_directory", "iii", NOTSUP),
    ("path_remove_directory", "iii", NOTSUP),
    ("path_unlink_file", "iii", NOTSUP),
    ("path_rename", "iiiiii", NOTSUP),
    ("path_readlink", "iiiiii", NOTSUP),
    ("path_symlink", "iiiii", NOTSUP),
    ("path_link", "iiiiiii", NOTSUP),
    ("proc_raise", "i", NOTSUP),
    ("sock_accept", "iii", NOTSUP),
    ("sock_recv", "iiiiii", NOTSUP),
    ("sock_send", "iiiii", NOTSUP),
    ("sock_shutdown", "ii", NOTSUP),
];

/// Links one fixed-errno stub; `on_call` is the embedder's bookkeeping (or refusal) per call.
pub(crate) fn stub<T: 'static>(
    linker: &mut Linker<T>,
    module: &str,
    name: &'static str,
    params: &str,
    result: i32,
    on_call: fn(&mut wasmtime::Caller<'_, T>, &'static str) -> wasmtime::Result<()>,
) -> wasmtime::Result<()> {
    let params: Vec<ValType> = params
        .chars()
        .map(|p| if p == 'I' { ValType::I64 } else { ValType::I32 })
        .collect();
    let ty = FuncType::new(linker.engine(), params, [ValType::I32]);
    linker.func_new(module, name, ty, move |mut c, _args, results| {
        on_call(&mut c, name)?;
        if let Some(slot) = results.first_mut() {
            *slot = Val::I32(result);
        }
        Ok(())
    })?;
    Ok(())
}
