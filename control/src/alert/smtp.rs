//! The SMTP dialogue keepalived runs with its relay (RFC 5321, no TLS, no
//! authentication): greeting, HELO, MAIL FROM, RCPT TO for each recipient, DATA, QUIT.
//! Every step is bounded in time and in what the server may send back; any unexpected
//! reply ends the message (and says which step and what the server answered).

use std::net::SocketAddr;
use std::time::Duration;

use thiserror::Error;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

/// Longest reply line read (RFC 5321 allows 512; some servers say more).
const MAX_LINE: usize = 4096;
/// Most lines of one multi-line reply.
const MAX_LINES: usize = 64;

#[derive(Debug, Error)]
pub enum SmtpError {
    #[error("connecting to {0}: {1}")]
    Connect(SocketAddr, std::io::Error),
    #[error("{step}: no answer within {0:?}", .timeout)]
    Timeout {
        step: &'static str,
        timeout: Duration,
    },
    #[error("{step}: {source}")]
    Io {
        step: &'static str,
        source: std::io::Error,
    },
    #[error("{step}: the server answered {reply:?}")]
    Refused { step: &'static str, reply: String },
    #[error("{step}: the server closed the connection")]
    Closed { step: &'static str },
    #[error("{step}: the server's reply is too long or malformed")]
    Malformed { step: &'static str },
}

/// One message: envelope and DATA (without the final ".").
pub struct Mail<'a> {
    pub helo: &'a str,
    pub from: &'a str,
    pub to: &'a [String],
    pub data: &'a str,
}

struct Session {
    reader: BufReader<TcpStream>,
    timeout: Duration,
}

impl Session {
    /// Reads one reply (its continuation lines too), all of it within the step's
    /// timeout; its code and last line.
    async fn reply(&mut self, step: &'static str) -> Result<(u16, String), SmtpError> {
        let limit = self.timeout;
        timeout(limit, self.reply_lines(step))
            .await
            .map_err(|_| SmtpError::Timeout {
                step,
                timeout: limit,
            })?
    }

    async fn reply_lines(&mut self, step: &'static str) -> Result<(u16, String), SmtpError> {
        for _ in 0..MAX_LINES {
            let mut line = Vec::new();
            let mut limited = AsyncReadExt::take(&mut self.reader, MAX_LINE as u64);
            let read = limited
                .read_until(b'\n', &mut line)
                .await
                .map_err(|source| SmtpError::Io { step, source })?;
            if read == 0 {
                return Err(SmtpError::Closed { step });
            }
            if !line.ends_with(b"\n") || line.len() < 4 {
                return Err(SmtpError::Malformed { step });
            }
            let text = String::from_utf8_lossy(&line).trim_end().to_string();
            let code: u16 = text
                .get(..3)
                .and_then(|c| c.parse().ok())
                .ok_or(SmtpError::Malformed { step })?;
            match line.get(3) {
                Some(b'-') => continue,
                _ => return Ok((code, text)),
            }
        }
        Err(SmtpError::Malformed { step })
    }

    async fn send(&mut self, step: &'static str, bytes: &[u8]) -> Result<(), SmtpError> {
        timeout(self.timeout, self.reader.get_mut().write_all(bytes))
            .await
            .map_err(|_| SmtpError::Timeout {
                step,
                timeout: self.timeout,
            })?
            .map_err(|source| SmtpError::Io { step, source })
    }

    /// Sends `cmd` (CRLF added) and expects a reply whose code is in `ok`.
    async fn command(
        &mut self,
        step: &'static str,
        cmd: &str,
        ok: &[u16],
    ) -> Result<(), SmtpError> {
        self.send(step, format!("{cmd}\r\n").as_bytes()).await?;
        self.expect(step, ok).await
    }

    async fn expect(&mut self, step: &'static str, ok: &[u16]) -> Result<(), SmtpError> {
        let (code, text) = self.reply(step).await?;
        if ok.contains(&code) {
            Ok(())
        } else {
            Err(SmtpError::Refused { step, reply: text })
        }
    }
}

/// Sends `mail` through the relay at `server`; each connect, write and reply within
/// `step_timeout`.
pub async fn send(
    server: SocketAddr,
    step_timeout: Duration,
    mail: &Mail<'_>,
) -> Result<(), SmtpError> {
    let stream = timeout(step_timeout, TcpStream::connect(server))
        .await
        .map_err(|_| SmtpError::Timeout {
            step: "connect",
            timeout: step_timeout,
        })?
        .map_err(|e| SmtpError::Connect(server, e))?;
    let mut s = Session {
        reader: BufReader::new(stream),
        timeout: step_timeout,
    };
    let result = dialogue(&mut s, mail).await;
    // QUIT in any case, as keepalived does; its answer does not matter.
    let _ = s.command("QUIT", "QUIT", &[221]).await;
    result
}

async fn dialogue(s: &mut Session, mail: &Mail<'_>) -> Result<(), SmtpError> {
    s.expect("greeting", &[220]).await?;
    s.command("HELO", &format!("HELO {}", mail.helo), &[250])
        .await?;
    s.command("MAIL FROM", &format!("MAIL FROM:<{}>", mail.from), &[250])
        .await?;
    for to in mail.to {
        s.command("RCPT TO", &format!("RCPT TO:<{to}>"), &[250, 251])
            .await?;
    }
    s.command("DATA", "DATA", &[354]).await?;
    let mut body = mail.data.to_string();
    body += ".\r\n";
    s.send("message", body.as_bytes()).await?;
    s.expect("message", &[250]).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// A relay that answers each command with the next of `replies` and keeps what it
    /// was sent.
    async fn relay(replies: Vec<&'static str>) -> (SocketAddr, tokio::task::JoinHandle<String>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let h = tokio::spawn(async move {
            let (mut c, _) = l.accept().await.unwrap();
            let mut seen = String::new();
            let mut replies = replies.into_iter();
            c.write_all(b"220 sink ready\r\n").await.unwrap();
            let mut buf = vec![0u8; 65536];
            let mut in_data = false;
            loop {
                let n = match c.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                seen += &String::from_utf8_lossy(&buf[..n]);
                if in_data && !seen.ends_with("\r\n.\r\n") {
                    continue;
                }
                let Some(r) = replies.next() else { break };
                in_data = r.starts_with("354");
                c.write_all(format!("{r}\r\n").as_bytes()).await.unwrap();
            }
            seen
        });
        (addr, h)
    }

    fn mail<'a>(to: &'a [String]) -> Mail<'a> {
        Mail {
            helo: "lb1",
            from: "xvs@lb1",
            to,
            data: "Subject: x\r\n\r\n..dot\r\n",
        }
    }

    #[tokio::test]
    async fn a_message_goes_through_the_whole_dialogue() {
        let (addr, h) = relay(vec![
            "250-hello\r\n250 ok",
            "250 ok",
            "250 ok",
            "251 forwarded",
            "354 go",
            "250 queued",
            "221 bye",
        ])
        .await;
        let to = vec!["a@example.org".to_string(), "b@example.org".to_string()];
        // "250-hello", "250 ok": one multi-line reply to HELO.
        send(addr, Duration::from_secs(5), &mail(&to))
            .await
            .unwrap();
        let seen = h.await.unwrap();
        assert_eq!(
            seen,
            "HELO lb1\r\nMAIL FROM:<xvs@lb1>\r\nRCPT TO:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\nSubject: x\r\n\r\n..dot\r\n.\r\nQUIT\r\n"
        );
    }

    #[tokio::test]
    async fn a_refused_recipient_ends_the_message_with_quit() {
        let (addr, h) = relay(vec!["250 hi", "250 ok", "550 no such user", "221 bye"]).await;
        let to = vec!["a@example.org".to_string()];
        let e = send(addr, Duration::from_secs(5), &mail(&to))
            .await
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("RCPT TO: the server answered \"550 no such user\""),
            "{e}"
        );
        assert!(h
            .await
            .unwrap()
            .ends_with("RCPT TO:<a@example.org>\r\nQUIT\r\n"));
    }

    #[tokio::test]
    async fn a_silent_server_times_out_and_a_closed_port_fails_at_once() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        // Accepted by the kernel's backlog, never answered.
        let started = std::time::Instant::now();
        let to = vec!["a@example.org".to_string()];
        let e = send(addr, Duration::from_millis(300), &mail(&to))
            .await
            .unwrap_err();
        assert!(
            matches!(
                e,
                SmtpError::Timeout {
                    step: "greeting",
                    ..
                }
            ),
            "{e}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        drop(l);
        let e = send(addr, Duration::from_millis(300), &mail(&to))
            .await
            .unwrap_err();
        assert!(matches!(e, SmtpError::Connect(..)), "{e}");
    }

    #[tokio::test]
    async fn an_endless_reply_is_refused() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut c, _) = l.accept().await.unwrap();
            let _ = c.write_all(&vec![b'2'; 100_000]).await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let to = vec!["a@example.org".to_string()];
        let e = send(addr, Duration::from_secs(2), &mail(&to))
            .await
            .unwrap_err();
        assert!(
            matches!(e, SmtpError::Malformed { step: "greeting" }),
            "{e}"
        );
    }
}
