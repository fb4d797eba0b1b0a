//! The `/metrics` request, sans I/O: the bytes read so far either hold a whole request
//! head (up to the blank line), need more, or can never be a request we answer.

/// The most a request head may take; Prometheus sends a few hundred bytes.
pub const MAX_HEAD: usize = 8192;

#[derive(Debug, PartialEq, Eq)]
pub enum Head {
    /// The blank line has not arrived yet.
    Incomplete,
    /// `GET /metrics` (any query): `openmetrics` when the Accept header asks for it;
    /// `head` for a HEAD request (answered without a body).
    Metrics { openmetrics: bool, head: bool },
    /// `GET /`: the status page (`observe::page`); `head` as above.
    Page { head: bool },
    /// `GET /status.json`: the page's JSON twin; `head` as above.
    Json { head: bool },
    /// A well-formed request for something else (404); `head` as above.
    OtherPath { head: bool },
    /// Not GET or HEAD (405).
    OtherMethod,
    /// Past `MAX_HEAD` without the blank line (431).
    TooLarge,
    /// Not an HTTP/1 request line, or not text (400).
    Malformed,
}

impl Head {
    /// The status line an answer to this head carries.
    pub fn status(&self) -> &'static str {
        match self {
            Head::Metrics { .. } | Head::Page { .. } | Head::Json { .. } => "200 OK",
            Head::OtherPath { .. } => "404 Not Found",
            Head::OtherMethod => "405 Method Not Allowed",
            Head::TooLarge => "431 Request Header Fields Too Large",
            Head::Malformed | Head::Incomplete => "400 Bad Request",
        }
    }
}

/// Reads `buf` (everything received so far) as a request head.
pub fn parse(buf: &[u8]) -> Head {
    let Some(end) = find(buf, b"\r\n\r\n")
        .map(|i| i + 2)
        .or_else(|| find(buf, b"\n\n").map(|i| i + 1))
    else {
        return if buf.len() >= MAX_HEAD {
            Head::TooLarge
        } else {
            Head::Incomplete
        };
    };
    if end > MAX_HEAD {
        return Head::TooLarge;
    }
    let Ok(head) = std::str::from_utf8(&buf[..end]) else {
        return Head::Malformed;
    };
    let mut lines = head.lines();
    let line = lines.next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Head::Malformed;
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Head::Malformed;
    }
    if method != "GET" && method != "HEAD" {
        return Head::OtherMethod;
    }
    let head = method == "HEAD";
    let path = target.split('?').next().unwrap_or("");
    match path {
        "/metrics" => {}
        "/" => return Head::Page { head },
        "/status.json" => return Head::Json { head },
        _ => return Head::OtherPath { head },
    }
    let openmetrics = lines.any(|h| {
        h.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("accept")
                && v.to_ascii_lowercase()
                    .contains("application/openmetrics-text")
        })
    });
    Head::Metrics { openmetrics, head }
}

impl Head {
    /// The answer carries no body (a HEAD request).
    pub fn head_only(&self) -> bool {
        matches!(
            self,
            Head::Metrics { head: true, .. }
                | Head::Page { head: true }
                | Head::Json { head: true }
                | Head::OtherPath { head: true }
        )
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prometheus_scrape() {
        let r = b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n\r\n";
        assert_eq!(
            parse(r),
            Head::Metrics {
                openmetrics: true,
                head: false
            }
        );
        assert_eq!(
            parse(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"),
            Head::Metrics {
                openmetrics: false,
                head: false
            }
        );
        assert_eq!(
            parse(b"GET /metrics HTTP/1.1\n\n"),
            Head::Metrics {
                openmetrics: false,
                head: false
            }
        );
    }

    #[test]
    fn a_head_read_in_pieces_is_incomplete_until_its_blank_line() {
        let r = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
        for cut in 0..r.len() - 1 {
            assert_eq!(parse(&r[..cut]), Head::Incomplete, "{cut}");
        }
        assert_eq!(
            parse(r),
            Head::Metrics {
                openmetrics: false,
                head: false
            }
        );
    }

    #[test]
    fn the_status_page_and_its_twin() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\n\r\n"), Head::Page { head: false });
        assert_eq!(
            parse(b"HEAD /?x HTTP/1.1\r\n\r\n"),
            Head::Page { head: true }
        );
        assert_eq!(
            parse(b"GET /status.json HTTP/1.0\r\n\r\n"),
            Head::Json { head: false }
        );
        assert_eq!(
            parse(b"POST / HTTP/1.1\r\n\r\n"),
            Head::OtherMethod,
            "never writable"
        );
        assert_eq!(
            parse(b"GET /status.json/.. HTTP/1.1\r\n\r\n"),
            Head::OtherPath { head: false }
        );
    }

    #[test]
    fn everything_else() {
        assert_eq!(
            parse(b"GET /index.html HTTP/1.1\r\n\r\n"),
            Head::OtherPath { head: false }
        );
        let h = parse(b"HEAD /metrics HTTP/1.1\r\n\r\n");
        assert_eq!(
            h,
            Head::Metrics {
                openmetrics: false,
                head: true
            }
        );
        assert!(h.head_only());
        assert!(parse(b"HEAD /x HTTP/1.1\r\n\r\n").head_only());
        assert_eq!(
            parse(b"GET /metricsx HTTP/1.1\r\n\r\n"),
            Head::OtherPath { head: false }
        );
        assert_eq!(parse(b"POST /metrics HTTP/1.1\r\n\r\n"), Head::OtherMethod);
        assert_eq!(parse(b"GET /metrics\r\n\r\n"), Head::Malformed);
        assert_eq!(parse(b"GET metrics HTTP/1.1\r\n\r\n"), Head::Malformed);
        assert_eq!(parse(b"\x16\x03\x01\x02\x00\r\n\r\n"), Head::Malformed);
        assert_eq!(parse(b"GET /metrics SMTP\r\n\r\n"), Head::Malformed);
        let mut huge = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        huge.resize(MAX_HEAD, b'a');
        assert_eq!(parse(&huge), Head::TooLarge);
        huge.extend_from_slice(b"\r\n\r\n");
        assert_eq!(parse(&huge), Head::TooLarge);
    }
}
