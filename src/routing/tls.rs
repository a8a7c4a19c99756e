//! `[server] tls`: the certificate chain and private key the public listener serves HTTPS and
//! WSS with, read from PEM files (watched: a renewed certificate is a changed configuration,
//! applied to new connections).

use std::path::PathBuf;
use std::sync::Arc;

use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The TLS settings of the public listener.
#[derive(Clone)]
pub struct TlsSettings {
    /// The certificate chain's file.
    pub cert_path: PathBuf,
    /// The private key's file.
    pub key_path: PathBuf,
    /// The files' contents, as read (what a reload compares).
    pems: (Vec<u8>, Vec<u8>),
    /// The rustls configuration built from them.
    pub config: Arc<ServerConfig>,
}

impl TlsSettings {
    /// Settings from the PEM texts of a certificate chain and its private key; an error
    /// saying what is wrong with them.
    pub fn new(
        cert_path: PathBuf,
        cert_pem: Vec<u8>,
        key_path: PathBuf,
        key_pem: Vec<u8>,
    ) -> Result<TlsSettings, String> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("`cert` is not PEM certificates ({e})"))?;
        if chain.is_empty() {
            return Err("`cert` holds no certificate (expected PEM `CERTIFICATE` blocks)".into());
        }
        let key = PrivateKeyDer::from_pem_slice(&key_pem)
            .map_err(|e| format!("`key` is not a PEM private key ({e})"))?;
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .map_err(|e| format!("`key` does not go with `cert` ({e})"))?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsSettings {
            cert_path,
            key_path,
            pems: (cert_pem, key_pem),
            config: Arc::new(config),
        })
    }
}

impl PartialEq for TlsSettings {
    fn eq(&self, other: &Self) -> bool {
        self.cert_path == other.cert_path
            && self.key_path == other.key_path
            && self.pems == other.pems
    }
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("cert_path", &self.cert_path)
            .field("key_path", &self.key_path)
            .finish_non_exhaustive()
    }
}

impl Eq for TlsSettings {}
