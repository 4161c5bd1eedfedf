//! Why an outgoing connection could not be made, with certificate problems
//! told apart so that the operator reads what to fix.

use std::fmt;

use tokio_rustls::rustls;

/// What went wrong connecting to a `ws://` or `wss://` server.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// The URL cannot be connected to (scheme, host).
    #[error("{url}: {reason}")]
    Url {
        /// The URL (without its query).
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The CA file could not be read or holds no certificate.
    #[error("CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What went wrong.
        reason: String,
    },
    /// The TCP connection could not be made.
    #[error("connecting to {server}: {source}")]
    Tcp {
        /// `HOST:PORT`.
        server: String,
        /// The socket error.
        source: std::io::Error,
    },
    /// The server's certificate was refused.
    #[error("TLS: the certificate of {server} {problem}: {detail}{}", problem.hint())]
    Certificate {
        /// `HOST:PORT`.
        server: String,
        /// Which check failed.
        problem: CertificateProblem,
        /// rustls's own words.
        detail: String,
    },
    /// The TLS handshake failed for another reason (protocol versions,
    /// ciphers, the server hung up).
    #[error("TLS handshake with {server} failed: {source}")]
    Handshake {
        /// `HOST:PORT`.
        server: String,
        /// The error, rustls's inside when it has one.
        source: std::io::Error,
    },
    /// TLS could not be set up on this side.
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
    /// The WebSocket handshake, or the request for it, failed.
    #[error("{0}")]
    WebSocket(#[from] tokio_tungstenite::tungstenite::Error),
}

/// Which certificate check refused a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateProblem {
    /// No trusted root issued it (self-signed, or a private CA that was not given).
    Untrusted,
    /// It is not valid for the host name in the URL.
    NameMismatch,
    /// It has expired, or is not valid yet.
    OutsideValidity,
    /// Any other reason (revoked, badly encoded, bad signature...).
    Other,
}

impl CertificateProblem {
    pub(crate) fn of(error: &rustls::CertificateError) -> Self {
        use rustls::CertificateError as E;
        match error {
            E::UnknownIssuer => Self::Untrusted,
            E::NotValidForName | E::NotValidForNameContext { .. } => Self::NameMismatch,
            E::Expired | E::ExpiredContext { .. } | E::NotValidYet | E::NotValidYetContext { .. } => {
                Self::OutsideValidity
            }
            _ => Self::Other,
        }
    }

    /// What the operator can do about it.
    fn hint(self) -> &'static str {
        match self {
            Self::Untrusted => {
                " (if the server uses a private CA, pass that CA's PEM file with --ca-file or $QUOTEHUB_CA_FILE)"
            }
            Self::NameMismatch => " (connect by a name the certificate lists)",
            Self::OutsideValidity | Self::Other => "",
        }
    }
}

impl fmt::Display for CertificateProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Untrusted => "is not trusted",
            Self::NameMismatch => "is not valid for this host name",
            Self::OutsideValidity => "is outside its validity period",
            Self::Other => "is invalid",
        })
    }
}

impl ConnectError {
    /// Tells a refused certificate apart from other handshake failures.
    pub(crate) fn handshake(server: String, error: std::io::Error) -> Self {
        let certificate = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .and_then(|rustls_error| match rustls_error {
                rustls::Error::InvalidCertificate(certificate) => Some(certificate),
                _ => None,
            });
        match certificate {
            Some(certificate) => Self::Certificate {
                server,
                problem: CertificateProblem::of(certificate),
                detail: certificate.to_string(),
            },
            None => Self::Handshake { server, source: error },
        }
    }

    /// The certificate problem, when a certificate was refused.
    pub fn certificate_problem(&self) -> Option<CertificateProblem> {
        match self {
            Self::Certificate { problem, .. } => Some(*problem),
            _ => None,
        }
    }
}
