//! The scheduler's flags, and the table size of Maglev (mh).

use crate::model::*;
use crate::spanned::Spanned;
use crate::validate::checker::{is_prime, Checker};

/// `scheduler_flags`: sh-* flags go with sh, mh-* with mh.
pub(super) fn flags(
    ck: &mut Checker,
    flags: &[Spanned<SchedFlag>],
    scheduler: Scheduler,
) -> SchedFlags {
    let mut out = SchedFlags::default();
    for f in flags {
        let (fits, port) = match f.value {
            SchedFlag::ShPort => (scheduler == Scheduler::Sh, true),
            SchedFlag::ShFallback => (scheduler == Scheduler::Sh, false),
            SchedFlag::MhPort => (scheduler == Scheduler::Mh, true),
            SchedFlag::MhFallback => (scheduler == Scheduler::Mh, false),
        };
        if !fits {
            ck.error(
                f,
                format!(
                    "this flag does not apply to scheduler {}",
                    scheduler.as_str()
                ),
                "sh-* flags go with sh, mh-* flags with mh",
            );
        }
        if port {
            out.port = true;
        } else {
            out.fallback = true;
        }
    }
    out
}

/// `mh_table_size`: mh's alone, and a prime.
pub(super) fn mh_table_size(
    ck: &mut Checker,
    size: Option<&Spanned<i64>>,
    scheduler: Scheduler,
) -> u32 {
    match size {
        None => MH_DEFAULT_TABLE_SIZE,
        Some(m) => {
            let v = ck.range(
                m,
                "mh_table_size",
                2,
                MH_MAX_TABLE_SIZE,
                "a prime such as 65537 (the default) or 251",
            );
            if scheduler != Scheduler::Mh {
                ck.error(
                    m,
                    "mh_table_size applies to scheduler mh only".into(),
                    "remove it, or use `scheduler: mh`",
                );
            } else if v >= 2 && !is_prime(v as u64) {
                ck.error(m, format!("mh_table_size {v} is not a prime"), "Maglev needs a prime table size: 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 65537, 131071");
            }
            v as u32
        }
    }
}
