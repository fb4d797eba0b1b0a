//! keepalived.conf as a tree: each statement is its words and, if it opens a block, the
//! statements inside. Comments (`!` or `#` to the end of the line) are dropped; a quoted
//! string is one word.

/// One statement: `lb_algo rr`, or `real_server 10.0.0.11 80 { ... }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stmt {
    pub words: Vec<String>,
    /// Line of its first word (from 1).
    pub line: usize,
    pub block: Option<Vec<Stmt>>,
}

impl Stmt {
    pub fn keyword(&self) -> &str {
        self.words.first().map_or("", String::as_str)
    }

    /// The words after the keyword.
    pub fn args(&self) -> &[String] {
        self.words.get(1..).unwrap_or(&[])
    }

    pub fn arg(&self, i: usize) -> Option<&str> {
        self.args().get(i).map(String::as_str)
    }
}

/// A word with the line it is on; `{` and `}` are words of their own.
fn words(text: &str) -> Vec<(String, usize)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let mut chars = line.chars().peekable();
        let mut word = String::new();
        let flush = |w: &mut String, out: &mut Vec<(String, usize)>| {
            if !w.is_empty() {
                out.push((std::mem::take(w), n + 1));
            }
        };
        while let Some(c) = chars.next() {
            match c {
                '!' | '#' if word.is_empty() => break,
                '"' => {
                    flush(&mut word, &mut out);
                    let mut quoted = String::new();
                    for q in chars.by_ref() {
                        if q == '"' {
                            break;
                        }
                        quoted.push(q);
                    }
                    out.push((quoted, n + 1));
                }
                '{' | '}' => {
                    flush(&mut word, &mut out);
                    out.push((c.to_string(), n + 1));
                }
                c if c.is_whitespace() => flush(&mut word, &mut out),
                c => word.push(c),
            }
        }
        flush(&mut word, &mut out);
    }
    out
}

/// The statements of `text`; a `}` without its `{` ends nothing and is reported by line.
pub fn parse(text: &str) -> (Vec<Stmt>, Vec<usize>) {
    let toks = words(text);
    let mut stray = Vec::new();
    let mut i = 0;
    let stmts = block(&toks, &mut i, &mut stray, true);
    (stmts, stray)
}

fn block(toks: &[(String, usize)], i: &mut usize, stray: &mut Vec<usize>, top: bool) -> Vec<Stmt> {
    let mut out: Vec<Stmt> = Vec::new();
    // Statements end at the end of their line, or at a brace.
    let mut cur: Option<Stmt> = None;
    while let Some((w, line)) = toks.get(*i) {
        *i += 1;
        match w.as_str() {
            "{" => {
                let inner = block(toks, i, stray, false);
                let mut s = cur.take().unwrap_or(Stmt {
                    words: Vec::new(),
                    line: *line,
                    block: None,
                });
                s.block = Some(inner);
                out.push(s);
            }
            "}" => {
                out.extend(cur.take());
                if top {
                    stray.push(*line);
                    continue;
                }
                return out;
            }
            _ => match &mut cur {
                Some(s) if s.line == *line => s.words.push(w.clone()),
                _ => {
                    out.extend(cur.take());
                    cur = Some(Stmt {
                        words: vec![w.clone()],
                        line: *line,
                        block: None,
                    });
                }
            },
        }
    }
    out.extend(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_comments_and_quotes() {
        let (s, stray) = parse(
            "! comment\nglobal_defs {\n   router_id LVS # trailing\n}\nvirtual_server 10.0.0.1 80 {\n  real_server 10.0.0.11 80 {\n    MISC_CHECK { misc_path \"/bin/check x\" }\n  }\n}\n}\n",
        );
        assert_eq!(stray, vec![10]);
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].words, vec!["global_defs"]);
        let gd = s[0].block.as_ref().unwrap();
        assert_eq!(gd[0].words, vec!["router_id", "LVS"]);
        assert_eq!(gd[0].line, 3);
        let rs = &s[1].block.as_ref().unwrap()[0];
        assert_eq!(rs.args(), ["10.0.0.11", "80"]);
        let misc = &rs.block.as_ref().unwrap()[0];
        assert_eq!(misc.keyword(), "MISC_CHECK");
        assert_eq!(
            misc.block.as_ref().unwrap()[0].words,
            vec!["misc_path", "/bin/check x"]
        );
    }

    #[test]
    fn a_brace_on_its_own_line_opens_the_previous_statement() {
        let (s, _) = parse("vrrp_instance VI_1\n{\n  state MASTER\n}\n");
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].args(), ["VI_1"]);
        assert_eq!(
            s[0].block.as_ref().unwrap()[0].words,
            vec!["state", "MASTER"]
        );
    }
}
