//! Serving a simulated cluster on a socket: HTTP or HTTPS (HTTP/1.1 and HTTP/2), client
//! certificate identities, and the "unreachable" fault (socket closed, connections cut, then
//! re-bound on the same port).

use std::net::SocketAddr;
use std::time::Duration;

use axum::Extension;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::sim::{self, KubeSim, PeerIdentity};
use crate::tls::{self, Tls};

/// A running server; dropping it does not stop it, [`Server::shutdown`] does.
pub struct Server {
    pub addr: SocketAddr,
    pub https: bool,
    ca_pem: Option<String>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Server {
    /// `http://127.0.0.1:PORT` or `https://...`.
    pub fn url(&self) -> String {
        format!("{}://{}", if self.https { "https" } else { "http" }, self.addr)
    }

    /// The CA that signed the serving certificate (HTTPS only).
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Stops accepting and closes connections.
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        let _ = self.task.await;
    }
}

/// Binds and starts the accept loop.
pub async fn start(sim: KubeSim, addr: SocketAddr, tls: Option<Tls>) -> std::io::Result<Server> {
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, stop_rx) = watch::channel(false);
    let ca_pem = tls.as_ref().map(|t| t.ca_pem().to_owned());
    let https = tls.is_some();
    let acceptor = tls.map(|t| tokio_rustls::TlsAcceptor::from(t.server_config()));
    let task = tokio::spawn(accept_loop(sim, listener, addr, acceptor, stop_rx));
    Ok(Server { addr, https, ca_pem, stop, task })
}

async fn accept_loop(
    sim: KubeSim,
    listener: TcpListener,
    addr: SocketAddr,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    mut stop: watch::Receiver<bool>,
) {
    let mut reach = sim::reachability(sim.state());
    // Bumped to cut every open connection.
    let (cut, _) = watch::channel(0u64);
    let mut listener = Some(listener);
    loop {
        if *reach.borrow() {
            listener = None;
            cut.send_modify(|n| *n += 1);
            tracing::info!(%addr, "kubesim unreachable (fault injected)");
            while *reach.borrow_and_update() {
                tokio::select! {
                    r = reach.changed() => if r.is_err() { return },
                    _ = stop.changed() => return,
                }
            }
            continue;
        }
        let Some(l) = listener.as_ref() else {
            match rebind(addr).await {
                Some(l) => {
                    tracing::info!(%addr, "kubesim reachable again");
                    listener = Some(l);
                }
                None => {
                    tracing::error!(%addr, "kubesim could not re-bind its port");
                    return;
                }
            }
            continue;
        };
        tokio::select! {
            accepted = l.accept() => match accepted {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve_connection(sim.clone(), stream, acceptor.clone(), cut.subscribe(), stop.clone()));
                }
                Err(e) => tracing::warn!(error = %e, "accept failed"),
            },
            _ = reach.changed() => {}
            _ = stop.changed() => {
                cut.send_modify(|n| *n += 1);
                return;
            }
        }
    }
}

async fn rebind(addr: SocketAddr) -> Option<TcpListener> {
    for _ in 0..50 {
        if let Ok(l) = TcpListener::bind(addr).await {
            return Some(l);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

async fn serve_connection(
    sim: KubeSim,
    stream: TcpStream,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    mut cut: watch::Receiver<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let builder = auto::Builder::new(TokioExecutor::new());
    match acceptor {
        None => {
            let svc = TowerToHyperService::new(sim.router());
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), svc);
            tokio::select! {
                _ = conn => {}
                _ = cut.changed() => {}
                _ = stop.changed() => {}
            }
        }
        Some(acceptor) => {
            let Ok(tls_stream) = acceptor.accept(stream).await else { return };
            let identity =
                tls_stream.get_ref().1.peer_certificates().and_then(|certs| certs.first()).and_then(tls::identity);
            let router = match identity {
                Some(id) => sim.router().layer(Extension::<PeerIdentity>(id)),
                None => sim.router(),
            };
            let svc = TowerToHyperService::new(router);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls_stream), svc);
            tokio::select! {
                _ = conn => {}
                _ = cut.changed() => {}
                _ = stop.changed() => {}
            }
        }
    }
}
