//! `quotehub cert`: a local CA and a server certificate signed by it, for
//! `wss://` on a laptop or a private network.
//!
//! A plain `openssl req -x509` certificate is a CA certificate (it carries
//! `CA:TRUE`), and TLS clients that verify properly (rustls, browsers)
//! refuse to accept a CA certificate from a server (`CaUsedAsEndEntity`).
//! So this writes the two that verification expects: a CA, which clients
//! trust (`QUOTEHUB_CA_FILE`, `--ca-file`, or a browser's authorities), and
//! a leaf for the server's names, signed by the CA, which the hub serves.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

use crate::cli::CertArgs;

/// How long the CA is valid.
const CA_DAYS: u64 = 10 * 365;
/// How long the server certificate is valid (browsers refuse leaves of
/// more than 398 days).
const SERVER_DAYS: u64 = 397;
/// How far back validity starts, for clocks a little behind this one.
const BACKDATE: Duration = Duration::from_secs(60 * 60);

/// The files `quotehub cert` writes.
#[derive(Debug)]
pub struct Written {
    /// The CA certificate: what clients trust.
    pub ca: PathBuf,
    /// The CA's private key: keep it, to sign more certificates later.
    pub ca_key: PathBuf,
    /// The server certificate followed by the CA's: `--tls-cert`.
    pub cert: PathBuf,
    /// The server's private key: `--tls-key`.
    pub key: PathBuf,
}

pub fn run(args: CertArgs) -> anyhow::Result<()> {
    let hosts = if args.hosts.is_empty() {
        vec!["localhost".to_owned(), "127.0.0.1".to_owned(), "::1".to_owned()]
    } else {
        args.hosts
    };
    let written = write(&args.out, &hosts)?;
    let first = hosts.first().map_or("localhost", String::as_str);
    let host = if first.contains(':') {
        format!("[{first}]")
    } else {
        first.to_owned()
    };
    println!(
        "wrote a local CA and a certificate for {names} (valid {SERVER_DAYS} days):\n\
         \x20 {ca}  the CA: trust it in clients\n\
         \x20 {ca_key}  the CA's key: keep it private\n\
         \x20 {cert}  the server certificate (with the CA's)\n\
         \x20 {key}  the server's key\n\
         \n\
         serve:     quotehub serve --tls-cert {cert} --tls-key {key}\n\
         subscribe: quotehub subscribe --url wss://{host}:8080/v1/quotes --ca-file {ca} AAPL\n\
         (or QUOTEHUB_CA_FILE={ca} for the Rust client and wss:// upstreams; a browser \
         needs the CA added to its authorities)",
        names = hosts.join(", "),
        ca = written.ca.display(),
        ca_key = written.ca_key.display(),
        cert = written.cert.display(),
        key = written.key.display(),
    );
    Ok(())
}

/// Writes `ca.pem`, `ca-key.pem`, `cert.pem` and `key.pem` into `dir` for
/// the server names `hosts` (DNS names or IP addresses). Existing files are
/// never overwritten.
pub fn write(dir: &Path, hosts: &[String]) -> anyhow::Result<Written> {
    anyhow::ensure!(!hosts.is_empty(), "a certificate needs at least one host name");
    let written = Written {
        ca: dir.join("ca.pem"),
        ca_key: dir.join("ca-key.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    for path in [&written.ca, &written.ca_key, &written.cert, &written.key] {
        anyhow::ensure!(
            !path.exists(),
            "{} exists already; choose another --out directory (nothing was written)",
            path.display()
        );
    }
    let now = SystemTime::now();
    let ca_key = KeyPair::generate().context("generating the CA's key")?;
    let mut ca = CertificateParams::default();
    ca.distinguished_name = name("quotehub local CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    (ca.not_before, ca.not_after) = validity(now, CA_DAYS)?;
    let ca_cert = ca.self_signed(&ca_key).context("signing the CA certificate")?;
    let ca_key_pem = ca_key.serialize_pem();
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate().context("generating the server's key")?;
    let mut server = CertificateParams::new(hosts.to_vec())
        .with_context(|| format!("{hosts:?} are not valid host names or IP addresses"))?;
    server.distinguished_name = name(&hosts[0]);
    server.is_ca = IsCa::ExplicitNoCa;
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    (server.not_before, server.not_after) = validity(now, SERVER_DAYS)?;
    let server_cert = server
        .signed_by(&key, &issuer)
        .context("signing the server certificate")?;

    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    create(&written.ca, &ca_cert.pem(), false)?;
    create(&written.ca_key, &ca_key_pem, true)?;
    // The chain a server sends: its own certificate, then the CA's.
    create(&written.cert, &format!("{}{}", server_cert.pem(), ca_cert.pem()), false)?;
    create(&written.key, &key.serialize_pem(), true)?;
    Ok(written)
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name.push(DnType::OrganizationName, "quotehub");
    name
}

/// From a little before `now` to `days` after it.
fn validity(now: SystemTime, days: u64) -> anyhow::Result<(time::OffsetDateTime, time::OffsetDateTime)> {
    let at = |when: SystemTime| -> anyhow::Result<time::OffsetDateTime> {
        let secs = when.duration_since(SystemTime::UNIX_EPOCH)?.as_secs();
        Ok(time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs)?)?)
    };
    Ok((at(now - BACKDATE)?, at(now + Duration::from_secs(days * 24 * 60 * 60))?))
}

/// Writes a new file; private keys are readable by their owner only.
fn create(path: &Path, text: &str, private: bool) -> anyhow::Result<()> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    if private {
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}
