//! keepalived's checkers, one probe each: TCP_CHECK (connect), HTTP_GET (status and
//! optional MD5 digest of the body), MISC_CHECK (a script's exit code) and a UDP check
//! (an answer, and no ICMP unreachable). Every probe is bounded in time and in the bytes
//! it reads, whatever the target does.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use md5::{Digest, Md5};
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

/// The most of an HTTP answer read (status line, headers, body for the digest).
const MAX_HTTP_BYTES: usize = 1 << 20;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    Tcp,
    Http {
        path: String,
        /// Status codes that count as up; empty: any 2xx.
        status_codes: Vec<u16>,
        /// MD5 of the body, hex, when the body must match.
        digest: Option<String>,
        /// The Host header (default: the target's address); also TLS's server name.
        virtualhost: Option<String>,
        /// SSL_GET: HTTP over TLS.
        tls: Option<Tls>,
    },
    Misc {
        /// Run with `sh -c`.
        script: String,
        /// keepalived's misc_dynamic: exit 2–255 means up with weight exit − 2.
        dynamic: bool,
    },
    Udp {
        payload: Vec<u8>,
    },
}

/// SSL_GET's TLS settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tls {
    /// Check the certificate against the web PKI roots and the server name. keepalived's
    /// SSL_GET does not by default, and neither does xvs.
    pub verify: bool,
}

/// Accepts any certificate: SSL_GET without `ssl_verify` checks the service, not its
/// identity (keepalived's default). The handshake signatures are still checked.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn tls_config(verify: bool) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?;
    Ok(if verify {
        let roots =
            rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        builder.with_root_certificates(roots).with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
            .with_no_client_auth()
    })
}

/// Sends the GET and judges the answer, over any stream (plain or TLS).
async fn http_exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    host: &str,
    path: &str,
    codes: &[u16],
    digest: Option<&str>,
) -> Outcome {
    let req = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: xvs-healthcheck\r\nConnection: close\r\n\r\n");
    if let Err(e) = s.write_all(req.as_bytes()).await {
        return Outcome::Down(format!("sending the request: {e}"));
    }
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        match s.read(&mut chunk).await {
            Ok(0) => break,
            Ok(n) if buf.len() + n > MAX_HTTP_BYTES => {
                return Outcome::Down(format!("answer larger than {MAX_HTTP_BYTES} bytes"))
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            // A TLS peer closing without close_notify after a whole answer is common.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !buf.is_empty() => break,
            Err(e) => return Outcome::Down(format!("reading the answer: {e}")),
        }
    }
    http_verdict(&buf, codes, digest)
}

/// A probe's verdict.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Up { weight: Option<u32> },
    Down(String),
}

async fn connect(target: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let sock = if target.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(src) = source {
        sock.bind(SocketAddr::new(src, 0))?;
    }
    sock.connect(target).await
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A misc check: the script's exit code says (keepalived's MISC_CHECK).
async fn misc(script: &str, dynamic: bool, timeout: Duration) -> Outcome {
    match crate::script::run(script, &[], timeout)
        .await
        .map(|s| s.code())
    {
        Ok(Some(0)) => Outcome::Up { weight: None },
        Ok(Some(c)) if dynamic && (2..=255).contains(&c) => Outcome::Up {
            weight: Some(c as u32 - 2),
        },
        Ok(Some(c)) => Outcome::Down(format!("`{script}` exited with {c}")),
        Ok(None) => Outcome::Down(format!("`{script}` was killed by a signal")),
        Err(e) => Outcome::Down(format!("`{script}`: {e}")),
    }
}

impl Probe {
    /// Runs the probe once against `target`, within `timeout`.
    pub async fn run(
        &self,
        target: SocketAddr,
        source: Option<IpAddr>,
        timeout: Duration,
    ) -> Outcome {
        // A misc script is bounded by the runner, which kills its whole process group
        // (and then needs a moment more): the outer bound is only a backstop there.
        let outer = match self {
            Probe::Misc { .. } => timeout + Duration::from_secs(5),
            _ => timeout,
        };
        match tokio::time::timeout(outer, self.run_unbounded(target, source, timeout)).await {
            Ok(o) => o,
            Err(_) => Outcome::Down(format!("no answer within {:.1} s", timeout.as_secs_f64())),
        }
    }

    async fn run_unbounded(
        &self,
        target: SocketAddr,
        source: Option<IpAddr>,
        timeout: Duration,
    ) -> Outcome {
        match self {
            Probe::Tcp => match connect(target, source).await {
                Ok(_) => Outcome::Up { weight: None },
                Err(e) => Outcome::Down(format!("connect: {e}")),
            },
            Probe::Http {
                path,
                status_codes,
                digest,
                virtualhost,
                tls,
            } => {
                let s = match connect(target, source).await {
                    Ok(s) => s,
                    Err(e) => return Outcome::Down(format!("connect: {e}")),
                };
                let host = virtualhost
                    .clone()
                    .unwrap_or_else(|| target.ip().to_string());
                let Some(tls) = tls else {
                    return http_exchange(s, &host, path, status_codes, digest.as_deref()).await;
                };
                let config = match tls_config(tls.verify) {
                    Ok(c) => c,
                    Err(e) => return Outcome::Down(format!("TLS set-up: {e}")),
                };
                let name = match rustls::pki_types::ServerName::try_from(host.clone()) {
                    Ok(n) => n,
                    Err(e) => return Outcome::Down(format!("TLS server name {host:?}: {e}")),
                };
                match tokio_rustls::TlsConnector::from(Arc::new(config))
                    .connect(name, s)
                    .await
                {
                    Ok(t) => http_exchange(t, &host, path, status_codes, digest.as_deref()).await,
                    Err(e) => Outcome::Down(format!("TLS handshake: {e}")),
                }
            }
            Probe::Misc { script, dynamic } => misc(script, *dynamic, timeout).await,
            Probe::Udp { payload } => {
                let local = SocketAddr::new(
                    source.unwrap_or(if target.is_ipv4() {
                        "0.0.0.0".parse().unwrap()
                    } else {
                        "::".parse().unwrap()
                    }),
                    0,
                );
                let sock = match UdpSocket::bind(local).await {
                    Ok(s) => s,
                    Err(e) => return Outcome::Down(format!("bind: {e}")),
                };
                // Connected, so an ICMP port unreachable comes back as an error.
                if let Err(e) = sock.connect(target).await {
                    return Outcome::Down(format!("connect: {e}"));
                }
                if let Err(e) = sock.send(payload).await {
                    return Outcome::Down(format!("send: {e}"));
                }
                let mut buf = [0u8; 2048];
                match sock.recv(&mut buf).await {
                    Ok(_) => Outcome::Up { weight: None },
                    Err(e) => Outcome::Down(format!("no answer: {e}")),
                }
            }
        }
    }
}

/// Judges an HTTP answer: its status against `codes` (empty: 2xx), its body's MD5.
pub fn http_verdict(answer: &[u8], codes: &[u16], digest: Option<&str>) -> Outcome {
    let head_end = answer.windows(4).position(|w| w == b"\r\n\r\n");
    let status_line = answer.split(|b| *b == b'\n').next().unwrap_or_default();
    let status = std::str::from_utf8(status_line)
        .ok()
        .filter(|l| l.starts_with("HTTP/"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse::<u16>().ok());
    let Some(status) = status else {
        return Outcome::Down("not an HTTP answer".into());
    };
    let ok = if codes.is_empty() {
        (200..300).contains(&status)
    } else {
        codes.contains(&status)
    };
    if !ok {
        return Outcome::Down(format!("HTTP status {status}"));
    }
    if let Some(want) = digest {
        let body = head_end.map_or(&[][..], |i| &answer[i + 4..]);
        let got = hex(&Md5::digest(body));
        if !got.eq_ignore_ascii_case(want) {
            return Outcome::Down(format!("body digest {got}, expected {want}"));
        }
    }
    Outcome::Up { weight: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    const T: Duration = Duration::from_millis(500);

    fn http() -> Probe {
        Probe::Http {
            path: "/health".into(),
            status_codes: vec![],
            digest: None,
            virtualhost: None,
            tls: None,
        }
    }

    /// A local listener that answers each connection with `behaviour`.
    async fn server(behaviour: &'static str) -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                tokio::spawn(async move {
                    let mut req = [0u8; 1024];
                    let _ = s.read(&mut req).await;
                    match behaviour {
                        "ok" => {
                            let _ = s
                                .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello")
                                .await;
                        }
                        "500" => {
                            let _ = s
                                .write_all(b"HTTP/1.0 500 Internal Server Error\r\n\r\n")
                                .await;
                        }
                        "garbage" => {
                            let _ = s.write_all(b"\x00\xffnot http at all\r\n\r\n").await;
                        }
                        "hang" => tokio::time::sleep(Duration::from_secs(60)).await,
                        "slow" => {
                            tokio::time::sleep(Duration::from_secs(2)).await;
                            let _ = s.write_all(b"HTTP/1.0 200 OK\r\n\r\n").await;
                        }
                        "reset" => {
                            let _ = s.set_zero_linger();
                            drop(s);
                        }
                        "endless" => {
                            let junk = vec![b'x'; 65536];
                            while s.write_all(&junk).await.is_ok() {}
                        }
                        _ => {}
                    }
                });
            }
        });
        addr
    }

    /// A dual-stack real server checked over IPv6 (`connect_ip`, `bindto`): the probes
    /// speak IPv6 end to end.
    #[tokio::test]
    async fn tcp_and_http_over_ipv6() {
        let l = TcpListener::bind("[::1]:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, peer)) = l.accept().await {
                assert!(peer.is_ipv6());
                let mut req = [0u8; 1024];
                let _ = s.read(&mut req).await;
                let _ = s
                    .write_all(b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello")
                    .await;
            }
        });
        let source = Some("::1".parse().unwrap());
        assert_eq!(
            Probe::Tcp.run(addr, source, T).await,
            Outcome::Up { weight: None }
        );
        assert_eq!(
            http().run(addr, source, T).await,
            Outcome::Up { weight: None }
        );
        // Nothing listens on this one: down, with the reason.
        let closed: SocketAddr = "[::1]:1".parse().unwrap();
        assert!(matches!(
            Probe::Tcp.run(closed, None, T).await,
            Outcome::Down(_)
        ));
    }

    #[tokio::test]
    async fn http_against_misbehaving_servers() {
        assert_eq!(
            http().run(server("ok").await, None, T).await,
            Outcome::Up { weight: None }
        );
        assert_eq!(
            http().run(server("500").await, None, T).await,
            Outcome::Down("HTTP status 500".into())
        );
        assert_eq!(
            http().run(server("garbage").await, None, T).await,
            Outcome::Down("not an HTTP answer".into())
        );
        for b in ["hang", "slow"] {
            let o = http().run(server(b).await, None, T).await;
            assert!(
                matches!(&o, Outcome::Down(r) if r.starts_with("no answer within")),
                "{b}: {o:?}"
            );
        }
        let o = http().run(server("reset").await, None, T).await;
        assert!(matches!(o, Outcome::Down(_)), "reset: {o:?}");
        let o = http()
            .run(server("endless").await, None, Duration::from_secs(5))
            .await;
        assert!(
            matches!(&o, Outcome::Down(r) if r.contains("larger than")),
            "endless: {o:?}"
        );
    }

    #[tokio::test]
    async fn http_digest_and_codes() {
        let addr = server("ok").await;
        let md5_hello = "5d41402abc4b2a76b9719d911017c592";
        let with = |codes: Vec<u16>, digest: Option<&str>| Probe::Http {
            path: "/".into(),
            status_codes: codes,
            digest: digest.map(str::to_string),
            virtualhost: Some("www.example".into()),
            tls: None,
        };
        assert_eq!(
            with(vec![], Some(md5_hello)).run(addr, None, T).await,
            Outcome::Up { weight: None }
        );
        assert!(
            matches!(with(vec![], Some("00")).run(addr, None, T).await, Outcome::Down(r) if r.contains("digest"))
        );
        assert!(
            matches!(with(vec![302], None).run(addr, None, T).await, Outcome::Down(r) if r == "HTTP status 200")
        );
    }

    /// A TLS server with the test certificate (CN rs.test) answering "hello".
    async fn tls_server() -> SocketAddr {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = vec![CertificateDer::from_pem_slice(include_bytes!(
            "../../tests/fixtures/test-cert.pem"
        ))
        .unwrap()];
        let key =
            PrivateKeyDer::from_pem_slice(include_bytes!("../../tests/fixtures/test-key.pem"))
                .unwrap();
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut t) = acceptor.accept(s).await {
                        let mut req = [0u8; 1024];
                        let _ = t.read(&mut req).await;
                        let _ = t.write_all(b"HTTP/1.0 200 OK\r\n\r\nhello").await;
                        let _ = t.shutdown().await;
                    }
                });
            }
        });
        addr
    }

    #[tokio::test]
    async fn ssl_get_with_and_without_verification() {
        let addr = tls_server().await;
        let https = |verify| Probe::Http {
            path: "/".into(),
            status_codes: vec![200],
            digest: Some("5d41402abc4b2a76b9719d911017c592".into()),
            virtualhost: Some("rs.test".into()),
            tls: Some(Tls { verify }),
        };
        assert_eq!(
            https(false).run(addr, None, T).await,
            Outcome::Up { weight: None }
        );
        // A self-signed certificate fails verification against the web PKI.
        let o = https(true).run(addr, None, T).await;
        assert!(
            matches!(&o, Outcome::Down(r) if r.starts_with("TLS handshake")),
            "{o:?}"
        );
        // Plain HTTP to a TLS port gets no HTTP answer.
        let plain = Probe::Http {
            path: "/".into(),
            status_codes: vec![],
            digest: None,
            virtualhost: None,
            tls: None,
        };
        assert!(matches!(plain.run(addr, None, T).await, Outcome::Down(_)));
    }

    #[tokio::test]
    async fn tcp_and_refused() {
        assert_eq!(
            Probe::Tcp.run(server("hang").await, None, T).await,
            Outcome::Up { weight: None }
        );
        // A port nobody listens on: the bound-then-closed port of a fresh listener.
        let closed = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap()
        };
        assert!(
            matches!(Probe::Tcp.run(closed, None, T).await, Outcome::Down(r) if r.starts_with("connect"))
        );
    }

    #[tokio::test]
    async fn misc_exit_codes() {
        let m = |s: &str, dynamic| Probe::Misc {
            script: s.into(),
            dynamic,
        };
        let any: SocketAddr = "127.0.0.1:1".parse().unwrap();
        // A program and its arguments, as keepalived runs them (no shell of its own).
        assert_eq!(
            m("true", false).run(any, None, T).await,
            Outcome::Up { weight: None }
        );
        assert_eq!(
            m("sh -c 'exit 1'", false).run(any, None, T).await,
            Outcome::Down("`sh -c 'exit 1'` exited with 1".into())
        );
        assert_eq!(
            m("sh -c 'exit 7'", true).run(any, None, T).await,
            Outcome::Up { weight: Some(5) }
        );
        assert!(matches!(
            m("sh -c 'exit 7'", false).run(any, None, T).await,
            Outcome::Down(_)
        ));
        assert!(
            matches!(m("/nonexistent/script", false).run(any, None, T).await, Outcome::Down(r) if r.contains("cannot run"))
        );
        assert!(
            matches!(m("sleep 5", false).run(any, None, T).await, Outcome::Down(r) if r.contains("still running after"))
        );
    }

    #[tokio::test]
    async fn udp_answer_or_unreachable() {
        let echo = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            let mut b = [0u8; 64];
            while let Ok((n, peer)) = echo.recv_from(&mut b).await {
                let _ = echo.send_to(&b[..n], peer).await;
            }
        });
        let p = Probe::Udp {
            payload: b"ping".to_vec(),
        };
        assert_eq!(p.run(addr, None, T).await, Outcome::Up { weight: None });
        let closed = {
            let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
            s.local_addr().unwrap()
        };
        let o = p.run(closed, None, T).await;
        assert!(
            matches!(&o, Outcome::Down(r) if r.contains("refused") || r.starts_with("no answer")),
            "{o:?}"
        );
    }
}
