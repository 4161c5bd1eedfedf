//! Whom a TLS client trusts: the public web roots (Mozilla's, compiled in)
//! and, for private deployments and tests, the CA certificates of a PEM file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls;

use crate::error::ConnectError;

/// The environment variable naming a PEM file of extra CA certificates to
/// trust (for `quotehub subscribe` and for a hub's `wss://` upstreams).
pub const CA_FILE_ENV: &str = "QUOTEHUB_CA_FILE";

/// A TLS client configuration, cheap to clone: server certificates must
/// chain to one of its roots and name the host connected to.
#[derive(Clone)]
pub struct ClientTls {
    connector: TlsConnector,
    ca_file: Option<PathBuf>,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("ca_file", &self.ca_file)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Trusts the public web roots only.
    pub fn web_roots() -> Result<Self, ConnectError> {
        Self::build(root_store(), None)
    }

    /// Trusts the public web roots and every certificate in the PEM file at
    /// `path` (a CA, or a self-signed server certificate).
    pub fn with_ca_file(path: &Path) -> Result<Self, ConnectError> {
        let mut roots = root_store();
        let ca_error = |reason: String| ConnectError::CaFile {
            path: path.display().to_string(),
            reason,
        };
        let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|err| ca_error(err.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|err| ca_error(err.to_string()))?;
        if certificates.is_empty() {
            return Err(ca_error("no CERTIFICATE block found".into()));
        }
        for certificate in certificates {
            roots
                .add(certificate)
                .map_err(|err| ca_error(format!("not a usable CA certificate: {err}")))?;
        }
        Self::build(roots, Some(path.to_owned()))
    }

    /// [`ClientTls::with_ca_file`] when `ca_file` is given, else [`ClientTls::web_roots`].
    pub fn new(ca_file: Option<&Path>) -> Result<Self, ConnectError> {
        match ca_file {
            Some(path) => Self::with_ca_file(path),
            None => Self::web_roots(),
        }
    }

    /// The web roots, plus the CA file [`CA_FILE_ENV`] names when it is set.
    pub fn from_env() -> Result<Self, ConnectError> {
        let ca_file = std::env::var_os(CA_FILE_ENV).filter(|value| !value.is_empty());
        Self::new(ca_file.as_deref().map(Path::new))
    }

    /// The CA file trusted besides the web roots, if any.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    pub(crate) fn connector(&self) -> &TlsConnector {
        &self.connector
    }

    fn build(roots: rustls::RootCertStore, ca_file: Option<PathBuf>) -> Result<Self, ConnectError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth();
        // WebSocket upgrades are HTTP/1.1 requests.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            ca_file,
        })
    }
}

fn root_store() -> rustls::RootCertStore {
    rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ca_files_are_read_or_refused_clearly() {
        let dir = std::env::temp_dir().join(format!("quotehub-connect-trust-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let generated = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let good = dir.join("ca.pem");
        std::fs::write(&good, generated.cert.pem()).unwrap();
        let tls = ClientTls::with_ca_file(&good).unwrap();
        assert_eq!(tls.ca_file(), Some(good.as_path()));

        let missing = dir.join("missing.pem");
        let error = ClientTls::with_ca_file(&missing).unwrap_err().to_string();
        assert!(
            error.starts_with("CA file ") && error.contains("missing.pem"),
            "{error}"
        );

        // A key where the certificates should be: no CERTIFICATE block.
        let key = dir.join("key.pem");
        std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
        let error = ClientTls::with_ca_file(&key).unwrap_err().to_string();
        assert!(error.contains("no CERTIFICATE block"), "{error}");

        // A CERTIFICATE block whose contents are not a certificate.
        let garbage = dir.join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let error = ClientTls::with_ca_file(&garbage).unwrap_err().to_string();
        assert!(error.contains("not a usable CA certificate"), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
