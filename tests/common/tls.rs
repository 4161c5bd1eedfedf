//! A self-signed certificate for `localhost`, made fresh for a test and
//! written as PEM files, with the server and client TLS set-ups around it.

use std::path::PathBuf;
use std::sync::Arc;

use quotehub_connect::ClientTls;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::{TlsAcceptor, rustls};

/// A certificate and key in a directory of their own, removed when dropped.
pub struct TestCert {
    dir: PathBuf,
    /// `cert.pem`: also the CA file that trusts it.
    pub cert: PathBuf,
    /// `key.pem`.
    pub key: PathBuf,
    pub der: CertificateDer<'static>,
    key_der: Vec<u8>,
}

impl TestCert {
    /// A certificate for `localhost`, its files under a directory named for `test`.
    pub fn localhost(test: &str) -> Self {
        Self::localhost_as(test, rcgen::IsCa::NoCa)
    }

    /// A self-signed CA certificate for `localhost`, as `openssl req -x509`
    /// makes by default: trusted as a CA, refused as a server's own.
    pub fn localhost_ca(test: &str) -> Self {
        Self::localhost_as(test, rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained))
    }

    fn localhost_as(test: &str, is_ca: rcgen::IsCa) -> Self {
        let signing_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params.is_ca = is_ca;
        let generated = rcgen::CertifiedKey {
            cert: params.self_signed(&signing_key).unwrap(),
            signing_key,
        };
        let dir = std::env::temp_dir().join(format!("quotehub-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, generated.cert.pem()).unwrap();
        std::fs::write(&key, generated.signing_key.serialize_pem()).unwrap();
        Self {
            dir,
            cert,
            key,
            der: generated.cert.der().clone(),
            key_der: generated.signing_key.serialize_der(),
        }
    }

    /// A hub's TLS set-up serving this certificate.
    pub fn server_tls(&self) -> quotehub_server::ServerTls {
        quotehub_server::ServerTls::from_pem_files(&self.cert, &self.key).unwrap()
    }

    /// A plain rustls acceptor serving this certificate (for stand-in upstreams).
    pub fn acceptor(&self) -> TlsAcceptor {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![self.der.clone()], key)
            .unwrap();
        TlsAcceptor::from(Arc::new(config))
    }

    /// A TLS client that trusts this certificate (through its CA file).
    pub fn client_tls(&self) -> ClientTls {
        ClientTls::with_ca_file(&self.cert).unwrap()
    }
}

impl Drop for TestCert {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
