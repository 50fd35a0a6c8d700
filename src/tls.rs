//! TLS for the gRPC listener: a certificate and key from PEM files, mutual
//! TLS against a client CA, and rotation without restart.
//!
//! riskgate terminates TLS itself (rustls through tokio-rustls) rather than
//! through tonic's `ServerTlsConfig`, which is fixed at start: the current
//! [`rustls::ServerConfig`] lives in an [`ArcSwap`], every accepted
//! connection takes a handshake with whatever config is current, and
//! [`watch`] swaps in a new one when the files change. A new set of files
//! that does not load (garbage, a key that does not match the certificate,
//! an empty CA file) is logged and counted, and the previous config keeps
//! serving. Connections already open keep the certificate they shook hands
//! with.
//!
//! Private key contents are never logged or put in an error: key file
//! errors name the file, not what is in it.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;

use crate::telemetry::Metrics;

/// Largest certificate, key or CA file read, bytes.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// A client that has not finished its handshake by then is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Most handshakes in progress at once; connections beyond are closed.
pub const MAX_HANDSHAKES: usize = 1024;

/// Where the listener's certificate, key and (for mutual TLS) client CA are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsPaths {
    /// PEM: the server certificate, then any intermediates.
    pub cert: PathBuf,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// PEM: CA certificates that sign client certificates. `Some`: clients
    /// must present a certificate from one of them (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// Why a TLS configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read `{path}`: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("`{path}` is larger than {MAX_FILE_BYTES} bytes")]
    TooLarge { path: PathBuf },
    #[error("`{path}`: no PEM certificate in it")]
    NoCertificate { path: PathBuf },
    #[error("`{path}`: not a valid PEM certificate file")]
    BadCertificate { path: PathBuf },
    /// Says nothing of the file's contents: it may hold a key.
    #[error("`{path}`: no usable private key (PEM PKCS#8, PKCS#1 or SEC1 expected)")]
    BadKey { path: PathBuf },
    #[error("`{path}`: not a usable client CA: {reason}")]
    BadClientCa { path: PathBuf, reason: String },
    #[error("certificate `{cert}` and key `{key}` cannot serve: {reason}")]
    Mismatch {
        cert: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    let err = |source| TlsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(err)?.len();
    if len > MAX_FILE_BYTES {
        return Err(TlsError::TooLarge {
            path: path.to_path_buf(),
        });
    }
    std::fs::read(path).map_err(err)
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsError::BadCertificate {
            path: path.to_path_buf(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate {
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Loads the files into a server config (ALPN `h2`).
pub fn load(paths: &TlsPaths) -> Result<ServerConfig, TlsError> {
    let chain = certificates(&paths.cert)?;
    let key_pem = read(&paths.key)?;
    // The PEM parser's own errors may quote a line of the file: dropped.
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| TlsError::BadKey {
        path: paths.key.clone(),
    })?;
    let provider = provider();
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Mismatch {
            cert: paths.cert.clone(),
            key: paths.key.clone(),
            reason: e.to_string(),
        })?;
    let builder = match &paths.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let bad = |reason: String| TlsError::BadClientCa {
                path: ca.clone(),
                reason,
            };
            let mut roots = RootCertStore::empty();
            for c in certificates(ca)? {
                roots.add(c).map_err(|e| bad(e.to_string()))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| bad(e.to_string()))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Mismatch {
            cert: paths.cert.clone(),
            key: paths.key.clone(),
            reason: e.to_string(),
        })?;
    // HTTP/2 first (gRPC); HTTP/1.1 for the JSON face's plain HTTP clients.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// The config new connections shake hands with; swapped on rotation.
pub struct Current {
    paths: TlsPaths,
    config: ArcSwap<ServerConfig>,
}

impl Current {
    /// Loads the files.
    pub fn load(paths: TlsPaths) -> Result<Current, TlsError> {
        let config = load(&paths)?;
        Ok(Current {
            paths,
            config: ArcSwap::from_pointee(config),
        })
    }

    /// The files.
    pub fn paths(&self) -> &TlsPaths {
        &self.paths
    }

    /// Whether clients must present a certificate.
    pub fn mutual(&self) -> bool {
        self.paths.client_ca.is_some()
    }

    fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.config.load_full())
    }
}

/// A stream of TLS connections for tonic's `serve_with_incoming_shutdown`,
/// and the task that accepts them. The task stops accepting (and closes the
/// listener) as soon as the stream is dropped.
pub fn incoming(
    listener: TcpListener,
    current: Arc<Current>,
    metrics: Arc<Metrics>,
) -> (
    ReceiverStream<io::Result<TlsStream<TcpStream>>>,
    JoinHandle<()>,
) {
    let (tx, rx) = mpsc::channel(64);
    let task = tokio::spawn(accept_loop(listener, current, metrics, tx));
    (ReceiverStream::new(rx), task)
}

async fn accept_loop(
    listener: TcpListener,
    current: Arc<Current>,
    metrics: Arc<Metrics>,
    tx: mpsc::Sender<io::Result<TlsStream<TcpStream>>>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let accepted = tokio::select! {
            _ = tx.closed() => return,
            a = listener.accept() => a,
        };
        let (tcp, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                // EMFILE and friends: back off instead of spinning.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = handshakes.clone().try_acquire_owned() else {
            metrics.tls_handshake_failed();
            tracing::warn!(peer = %peer, "too many TLS handshakes in progress: connection closed");
            continue;
        };
        // With Nagle on, small responses stall ~40 ms on delayed ACKs.
        let _ = tcp.set_nodelay(true);
        let acceptor = current.acceptor();
        let tx = tx.clone();
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send(Ok(tls)).await;
                }
                Ok(Err(e)) => {
                    metrics.tls_handshake_failed();
                    tracing::debug!(peer = %peer, error = %e, "TLS handshake refused");
                }
                Err(_) => {
                    metrics.tls_handshake_failed();
                    tracing::debug!(peer = %peer, "TLS handshake timed out");
                }
            }
        });
    }
}

type Stamp = Option<(SystemTime, u64)>;

fn stamps(p: &TlsPaths) -> [Stamp; 3] {
    let stamp = |p: &Path| -> Stamp {
        let m = std::fs::metadata(p).ok()?;
        Some((m.modified().ok()?, m.len()))
    };
    [
        stamp(&p.cert),
        stamp(&p.key),
        p.client_ca.as_deref().and_then(stamp),
    ]
}

/// Polls the files and swaps in a new config when any of them changes and
/// the set loads; a set that does not load is logged and counted
/// (`riskgate_reloads_total{kind="tls"}`) and the previous config keeps
/// serving. A certificate and key replaced one after the other may fail in
/// between and succeed on the next poll.
pub async fn watch(current: Arc<Current>, every: Duration, metrics: Arc<Metrics>) {
    let mut last = stamps(&current.paths);
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        let now = stamps(&current.paths);
        if now == last {
            continue;
        }
        last = now;
        let paths = current.paths.clone();
        match tokio::task::spawn_blocking(move || load(&paths)).await {
            Ok(Ok(config)) => {
                current.config.store(Arc::new(config));
                tracing::info!(
                    tls.cert = %current.paths.cert.display(),
                    tls.mutual = current.mutual(),
                    "TLS certificate reloaded"
                );
                metrics.reload("tls", true);
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "TLS reload rejected; previous certificate keeps serving");
                metrics.reload("tls", false);
            }
            Err(e) => {
                tracing::error!(error = %e, "TLS reload task failed");
                metrics.reload("tls", false);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_errors_never_quote_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        let cert = dir.path().join("cert.pem");
        let secret =
            "-----BEGIN PRIVATE KEY-----\nTOP-SECRET-MATERIAL\n-----END PRIVATE KEY-----\n";
        std::fs::write(&key, secret).unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        let e = load(&TlsPaths {
            cert,
            key,
            client_ca: None,
        })
        .unwrap_err();
        assert!(matches!(e, TlsError::BadKey { .. }), "{e:?}");
        assert!(!format!("{e} {e:?}").contains("TOP-SECRET"), "{e:?}");
    }

    #[test]
    fn a_key_from_another_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let a = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let b = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, a.cert.pem()).unwrap();
        std::fs::write(&key, b.signing_key.serialize_pem()).unwrap();
        let e = load(&TlsPaths {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: None,
        })
        .unwrap_err();
        assert!(matches!(e, TlsError::Mismatch { .. }), "{e:?}");
        std::fs::write(&key, a.signing_key.serialize_pem()).unwrap();
        let c = load(&TlsPaths {
            cert,
            key,
            client_ca: None,
        })
        .unwrap();
        assert_eq!(c.alpn_protocols, vec![b"h2".to_vec(), b"http/1.1".to_vec()]);
    }
}
