//! One TCP connection (network filter), with Istio's TCP semantics: HTTP attributes do not
//! exist, so rules that need them cannot match (the engine's concern); the decision is made at
//! the first data, and a denial closes the connection.

use std::rc::Rc;

use crate::config::{LogLevel, MtlsMode};
use crate::engine::{Request, Verdict};
use crate::identity::PeerIdentity;

use super::facts::decode_socket_address;
use super::host::{Host, HostError};
use super::http::{
    dynamic_metadata, fetch_connection, filter_metadata, metadata_values, Action, INVALID_PEER_NOTE,
};
use super::plugin::{Counters, Plugin, LOG_PREFIX};
use super::report::{principal_for_log, report};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Undecided,
    Allowed,
    /// Denied and closing: no more bytes pass either way.
    Denied,
}

#[derive(Debug)]
pub struct TcpStream {
    plugin: Option<Rc<Plugin>>,
    state: State,
}

impl TcpStream {
    pub fn new(plugin: Option<Rc<Plugin>>) -> Self {
        TcpStream {
            plugin,
            state: State::Undecided,
        }
    }

    /// At accept time a TLS handshake may still be running, so the peer certificate is not
    /// known yet: Envoy's own network RBAC filter decides in `onData`
    /// (`source/extensions/filters/network/rbac/rbac_filter.cc`), and so does this one.
    pub fn on_new_connection<H: Host + ?Sized>(&mut self, _host: &H) -> Action {
        Action::Continue
    }

    /// Client bytes: decide on the first, then pass or hold.
    pub fn on_downstream_data<H: Host + ?Sized>(&mut self, host: &H) -> Action {
        self.decide_once(host)
    }

    /// Server bytes before the client sent any (server-first protocols): decide before any
    /// byte reaches an unauthorized client.
    pub fn on_upstream_data<H: Host + ?Sized>(&mut self, host: &H) -> Action {
        self.decide_once(host)
    }

    fn decide_once<H: Host + ?Sized>(&mut self, host: &H) -> Action {
        if self.state == State::Undecided {
            self.state = match &self.plugin {
                None => {
                    host.log(
                        LogLevel::Error,
                        &format!("{LOG_PREFIX}: connection closed: no configuration is in force"),
                    );
                    State::Denied
                }
                Some(plugin) => match evaluate(plugin, host) {
                    Ok(state) => state,
                    Err(e) => {
                        plugin.log(
                            host,
                            LogLevel::Error,
                            &format!("connection closed: a host call failed: {e}"),
                        );
                        Counters::bump(host, plugin.counters.denied);
                        State::Denied
                    }
                },
            };
            if self.state == State::Denied {
                if let Err(e) = host.close_downstream() {
                    host.log(
                        LogLevel::Error,
                        &format!("{LOG_PREFIX}: closing the denied connection failed: {e}"),
                    );
                }
            }
        }
        match self.state {
            State::Allowed => Action::Continue,
            State::Undecided | State::Denied => Action::Pause,
        }
    }
}

fn evaluate<H: Host + ?Sized>(plugin: &Plugin, host: &H) -> Result<State, HostError> {
    let needs = &plugin.needs;
    let connection = fetch_connection(plugin, host)?;
    let principal_text = principal_for_log(&connection.peer);
    // In a network filter `source.address` is the socket peer: both Istio's `source.ip` and
    // `remote.ip` (no X-Forwarded-For on TCP).
    let source = if needs.remote_ip || needs.direct_remote_ip {
        host.property(&["source", "address"])?
            .as_deref()
            .and_then(decode_socket_address)
    } else {
        None
    };
    let what = format!(
        "source={} destination={}",
        source.map_or_else(|| "-".to_string(), |a| a.to_string()),
        connection
            .destination
            .map_or_else(|| "-".to_string(), |a| a.to_string())
    );
    if matches!(connection.peer, PeerIdentity::Invalid(_)) {
        Counters::bump(host, plugin.counters.denied);
        Counters::bump(host, plugin.counters.invalid_peer_identity);
        plugin.log(
            host,
            plugin.config.denial_log_level,
            &format!(
                "denied connection principal={principal_text} {what} policy=none rule=- ({INVALID_PEER_NOTE})"
            ),
        );
        return Ok(State::Denied);
    }
    if plugin.config.mtls_mode == MtlsMode::Strict
        && !matches!(connection.peer, PeerIdentity::Verified(_))
    {
        Counters::bump(host, plugin.counters.denied);
        plugin.log(
            host,
            plugin.config.denial_log_level,
            &format!(
                "denied connection principal={principal_text} {what} policy=none rule=- (mtlsMode STRICT requires a verified peer identity)"
            ),
        );
        return Ok(State::Denied);
    }
    let metadata = dynamic_metadata(plugin, host);
    let metadata_values = metadata_values(plugin, host, metadata.as_deref());
    let filter_metadata = filter_metadata(&metadata_values);
    let request = Request {
        principal: connection.peer.principal(),
        direct_remote_ip: source.map(|a| a.ip()),
        remote_ip: source.map(|a| a.ip()),
        destination_ip: connection.destination.map(|a| a.ip()),
        // Port 0 is no listener's port: a host that gave a bare IP did not tell the port,
        // so it stays unknown and the engine fails closed by action (a DENY on ports matches).
        destination_port: connection.destination.map(|a| a.port()).filter(|&p| p != 0),
        sni: connection.sni.as_deref(),
        http: None,
        request_auth: None,
        filter_metadata: &filter_metadata,
    };
    let decision = plugin.engine.decide(&request);
    report(plugin, host, &decision, &principal_text, &what);
    Ok(match decision.verdict {
        Verdict::Allow => State::Allowed,
        Verdict::Deny => State::Denied,
    })
}
