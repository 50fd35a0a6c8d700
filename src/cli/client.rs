//! How the client subcommands (`eval`, `report`, `health`, `bench`) reach a
//! server: plain `http://`, or `https://` with a CA to trust and, for mutual
//! TLS, a client certificate and key.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::cli::eval::UsageError;

/// TLS options of a client subcommand.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ClientTls {
    /// PEM CA certificate(s) to trust for an https:// server.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
    /// PEM client certificate, for a server that requires mutual TLS (with --key).
    #[arg(long, value_name = "FILE", requires = "key")]
    pub cert: Option<PathBuf>,
    /// PEM private key of --cert.
    #[arg(long, value_name = "FILE", requires = "cert")]
    pub key: Option<PathBuf>,
}

fn read(what: &str, p: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(p).with_context(|| format!("cannot read the {what} `{}`", p.display()))
}

/// An endpoint for `addr` with the TLS options applied.
pub fn endpoint(addr: &str, tls: &ClientTls) -> anyhow::Result<Endpoint> {
    let endpoint = Endpoint::from_shared(addr.to_string())
        .map_err(|_| UsageError(format!("`{addr}` is not a URL like http://127.0.0.1:50051")))?;
    let https = addr.starts_with("https://");
    if !https {
        if tls.ca.is_some() || tls.cert.is_some() {
            return Err(UsageError(format!(
                "`--ca`, `--cert` and `--key` need an https:// address, not `{addr}`"
            ))
            .into());
        }
        return Ok(endpoint);
    }
    let Some(ca) = &tls.ca else {
        return Err(UsageError(
            "an https:// address needs `--ca FILE` (no system roots are built in)".into(),
        )
        .into());
    };
    let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read("CA", ca)?));
    if let (Some(cert), Some(key)) = (&tls.cert, &tls.key) {
        config = config.identity(Identity::from_pem(
            read("certificate", cert)?,
            read("key", key)?,
        ));
    }
    endpoint
        .tls_config(config)
        .context("the TLS options were refused")
}
