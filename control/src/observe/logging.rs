//! Where the log goes: to the journal, with its priorities and the events' fields, when
//! systemd connected stderr to it (JOURNAL_STREAM names stderr's device and inode: the
//! convention of every packaged daemon); as text on stderr otherwise. `XVS_LOG` filters
//! (default `info`).

use std::os::unix::fs::MetadataExt;

use tracing_subscriber::prelude::*;
use tracing_subscriber::EnvFilter;

/// Whether stderr is the journal stream systemd gave this process.
fn stderr_is_journal() -> bool {
    let Ok(v) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    std::fs::metadata("/proc/self/fd/2").is_ok_and(|m| names(&v, m.dev(), m.ino()))
}

/// Whether a JOURNAL_STREAM value ("DEVICE:INODE") names this device and inode.
fn names(journal_stream: &str, dev: u64, ino: u64) -> bool {
    journal_stream
        .split_once(':')
        .is_some_and(|(d, i)| d.parse() == Ok(dev) && i.parse() == Ok(ino))
}

fn filter() -> EnvFilter {
    EnvFilter::try_from_env("XVS_LOG").unwrap_or_else(|_| "info".into())
}

/// Sets the process's subscriber up.
pub fn init() {
    if stderr_is_journal() {
        if let Ok(j) = tracing_journald::layer() {
            // Fields as XVS_EVENT=, XVS_INSTANCE=, ... (`journalctl XVS_EVENT=reload`);
            // info as informational (6), warnings as warning (4), errors as err (3).
            let j = j
                .with_field_prefix(Some("XVS".into()))
                .with_priority_mappings(tracing_journald::PriorityMappings {
                    info: tracing_journald::Priority::Informational,
                    debug: tracing_journald::Priority::Debug,
                    ..tracing_journald::PriorityMappings::new()
                });
            tracing_subscriber::registry().with(filter()).with(j).init();
            return;
        }
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_stream_of_this_device_and_inode_is_the_journal() {
        assert!(names("64:1234", 64, 1234));
        assert!(!names("64:1234", 64, 1235));
        assert!(!names("65:1234", 64, 1234));
        assert!(!names("garbage", 64, 1234));
        assert!(!names("64:", 64, 1234));
    }
}
