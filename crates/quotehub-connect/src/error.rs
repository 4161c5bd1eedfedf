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
    #[error("TLS: the certificate of {server} {problem}{}{}", after_colon(detail), problem.hint())]
    Certificate {
        /// `HOST:PORT`.
        server: String,
        /// Which check failed.
        problem: CertificateProblem,
        /// rustls's own words (empty where they would only repeat the problem).
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
    /// It is a CA certificate (as `openssl req -x509` makes by default),
    /// which a server may not present as its own.
    CaAsServerCertificate,
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
            // webpki says so only in an opaque `Other` error, by its name.
            E::Other(other) if format!("{other:?}").contains("CaUsedAsEndEntity") => Self::CaAsServerCertificate,
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
            Self::CaAsServerCertificate => {
                "; the server must serve a leaf certificate signed by that CA (create a CA and one with `quotehub cert --out DIR`)"
            }
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
            Self::CaAsServerCertificate => "is a CA certificate, not a server certificate",
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
            Some(certificate) => {
                let problem = CertificateProblem::of(certificate);
                Self::Certificate {
                    server,
                    problem,
                    detail: match problem {
                        CertificateProblem::CaAsServerCertificate => String::new(),
                        _ => certificate.to_string(),
                    },
                }
            }
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

/// `": detail"`, or nothing for no detail.
fn after_colon(detail: &str) -> String {
    if detail.is_empty() {
        String::new()
    } else {
        format!(": {detail}")
    }
}
