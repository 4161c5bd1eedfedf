//! TLS for `wss://` and `https://`: rustls (with the ring provider) from PEM
//! certificate-chain and private-key files. Every route of the front door
//! runs over it unchanged.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ServerTlsError {
    /// A PEM file could not be read or held nothing usable.
    #[error("{what} {path}: {reason}")]
    Pem {
        /// "certificate" or "private key".
        what: &'static str,
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// rustls refused the certificate and key.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// A certificate chain and its private key, read from PEM files and
/// checked (settings only: the acceptor, with its session cache, is built
/// from them by the server's state, `state.rs`).
pub struct ServerTls {
    chain: Vec<CertificateDer<'static>>,
    private_key: PrivateKeyDer<'static>,
}

impl Clone for ServerTls {
    fn clone(&self) -> Self {
        Self {
            chain: self.chain.clone(),
            private_key: self.private_key.clone_key(),
        }
    }
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerTls")
            .field("certificates", &self.chain.len())
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Loads a certificate chain and its private key from PEM files, and
    /// checks that rustls takes them.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<Self, ServerTlsError> {
        let pem_error = |what, path: &Path, reason: String| ServerTlsError::Pem {
            what,
            path: path.display().to_string(),
            reason,
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
            .map_err(|err| pem_error("certificate", cert, err.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|err| pem_error("certificate", cert, err.to_string()))?;
        if chain.is_empty() {
            return Err(pem_error("certificate", cert, "no CERTIFICATE block found".into()));
        }
        let private_key =
            PrivateKeyDer::from_pem_file(key).map_err(|err| pem_error("private key", key, err.to_string()))?;
        let tls = Self { chain, private_key };
        tls.acceptor()?;
        Ok(tls)
    }

    /// A TLS acceptor for these credentials.
    pub(crate) fn acceptor(&self) -> Result<TlsAcceptor, ServerTlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), self.private_key.clone_key())?;
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }
}
