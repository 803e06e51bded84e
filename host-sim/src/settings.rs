//! Plugin-level settings: what Envoy's `PluginConfig`, `VmConfig`, bootstrap node and HCM decide.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::effects::LogLevel;
use crate::facts::{Hcm, Node};

/// Which top-level attribute names `proxy_get_property` accepts for the node and listener.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Attributes {
    /// Both `xds.node…` and the pre-1.33 top-level `node…` (lets a filter's fallback run).
    #[default]
    XdsAndLegacy,
    /// Envoy >= 1.33: only `xds.*` (changelog: "Remove previously deprecated xDS attributes
    /// from get_property").
    XdsOnly,
    /// Envoy < 1.23-ish: only the top-level `node`, no `xds`.
    LegacyOnly,
}

#[derive(Clone, Debug)]
pub(crate) struct Settings {
    pub plugin_name: String,
    pub root_id: String,
    pub vm_id: String,
    pub vm_configuration: Vec<u8>,
    pub node: Node,
    pub log_level: LogLevel,
    pub attributes: Attributes,
    pub hcm: Hcm,
    pub fail_open: bool,
    pub fuel_per_callback: u64,
    pub canary: bool,
    pub clock_start_ns: Option<u64>,
    pub listener_direction: i64,
    pub trace_hostcalls: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            plugin_name: "spiffe-authz".into(),
            root_id: String::new(),
            vm_id: String::new(),
            vm_configuration: Vec::new(),
            node: Node::default(),
            log_level: LogLevel::Info,
            attributes: Attributes::default(),
            hcm: Hcm {
                use_remote_address: false,
                xff_num_trusted_hops: 0,
                xfcc: crate::facts::Xfcc::AsSent,
            },
            fail_open: false,
            // Generous for configure-time compilation of big policies, yet bounds a guest loop
            // to well under a second.
            fuel_per_callback: 2_000_000_000,
            canary: true,
            clock_start_ns: None,
            listener_direction: 1,
            trace_hostcalls: false,
        }
    }
}

impl Settings {
    pub fn clock_start_ns(&self) -> u64 {
        self.clock_start_ns.unwrap_or_else(|| {
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
                .unwrap_or(0)
        })
    }
}
