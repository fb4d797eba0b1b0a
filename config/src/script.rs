//! A script line as keepalived reads one (`notify`, `misc_path`, ...): words split at
//! whitespace, a word in single or double quotes kept whole (quotes removed; they may
//! touch other characters, as in a shell), and a backslash taking the next character
//! as it is (`\t`, `\n` and `\\` decoded). The first word is the program, run directly
//! (no shell), so a file imported from keepalived keeps its meaning.

/// The words of `line`, or why it cannot be read.
pub fn argv(line: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (_, '\\') => {
                let next = chars
                    .next()
                    .ok_or_else(|| "a backslash ends the line".to_string())?;
                word.push(match next {
                    't' => '\t',
                    'n' => '\n',
                    other => other,
                });
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (_, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if let Some(q) = quote {
        return Err(format!("a {q} quote is not closed"));
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() {
        return Err("no program to run".into());
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Vec<String> {
        argv(line).unwrap()
    }

    #[test]
    fn words_quotes_and_escapes() {
        assert_eq!(ok("/bin/check x"), ["/bin/check", "x"]);
        assert_eq!(ok("  /bin/a   b\tc "), ["/bin/a", "b", "c"]);
        assert_eq!(
            ok("/bin/a 'two words' \"and more\""),
            ["/bin/a", "two words", "and more"]
        );
        assert_eq!(
            ok("/bin/a a'b c'd"),
            ["/bin/a", "ab cd"],
            "quotes inside a word"
        );
        assert_eq!(ok(r"/bin/a a\ b \\ \'"), ["/bin/a", "a b", "\\", "'"]);
        assert_eq!(
            ok("/bin/a ''"),
            ["/bin/a", ""],
            "an empty quoted word is a word"
        );
        assert_eq!(
            ok("/bin/a $(reboot); rm -rf /"),
            ["/bin/a", "$(reboot);", "rm", "-rf", "/"]
        );
    }

    #[test]
    fn unreadable_lines_say_why() {
        assert_eq!(argv("/bin/a 'open").unwrap_err(), "a ' quote is not closed");
        assert_eq!(argv("/bin/a \\").unwrap_err(), "a backslash ends the line");
        assert_eq!(argv("   ").unwrap_err(), "no program to run");
    }
}
