//! Directors that agree without talking: processes, each with its own history of
//! real-server ids (or its own order of the same real servers in the file), build mh's
//! table from the same configuration and give 100k flows the same real servers. Each process is this test binary run again (`child`), so no
//! state in memory is shared between them.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};

use xvs_dataplane::flow::FlowKey;
use xvs_dataplane::sched::{PickCtx, SchedState};

use super::publish::{self, Local};
use crate::health::HealthMap;
use crate::ids::DestRegistry;

const ENV: &str = "XVS_MH_AGREEMENT_HISTORY";
const FLOWS: u32 = 100_000;

fn config(real_servers: &[u8]) -> xvs_config::Config {
    let list: Vec<String> = real_servers
        .iter()
        .map(|i| format!("{{ address: 10.0.0.{i}, weight: {} }}", 1 + i % 3))
        .collect();
    let yaml = format!(
        "interface: lo\nvirtual_servers:\n  - {{ name: web, address: 10.10.10.10, port: 80, protocol: tcp, scheduler: mh, scheduler_flags: [mh-port], real_servers: [{}] }}\n",
        list.join(", ")
    );
    xvs_config::parse("t.yaml", &yaml).unwrap()
}

fn snapshot(cfg: &xvs_config::Config, registry: &mut DestRegistry) -> xvs_dataplane::Snapshot {
    let macs: HashMap<IpAddr, [u8; 6]> = (0..=255u8)
        .map(|i| (IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)), [2, 0, 0, 0, 0, i]))
        .collect();
    let quiet = publish::Quiet {
        drains: &Default::default(),
        overload: &Default::default(),
    };
    publish::build(
        1,
        cfg,
        Local::for_tests(),
        &macs,
        &HealthMap::new(),
        quiet,
        registry,
    )
    .unwrap()
}

/// This process's picks for `FLOWS` flows, as one digest, with how many real servers
/// were picked and how many flows got none, after the id history `history`
/// (0: none; 1: other real servers first; 2: the same ones in reverse order first; 3:
/// none, the file listing the real servers in another order).
fn picks(history: &str) -> (u64, usize, u32) {
    let wanted = match history {
        "3" => config(&[13, 15, 11, 14, 12]),
        _ => config(&[11, 12, 13, 14, 15]),
    };
    let mut registry = DestRegistry::default();
    match history {
        "1" => drop(snapshot(&config(&[19, 18, 17, 15]), &mut registry)),
        "2" => drop(snapshot(&config(&[15, 14, 13, 12, 11]), &mut registry)),
        _ => {}
    }
    let snap = snapshot(&wanted, &mut registry);
    let svc = &snap.services[0];
    let mut digest: u64 = 0xcbf2_9ce4_8422_2325;
    let (mut picked, mut none) = (std::collections::BTreeSet::new(), 0);
    for n in 0..FLOWS {
        let saddr = 0xac10_0000 | (n.wrapping_mul(2_654_435_761) & 0x000f_ffff);
        let key = FlowKey::new(saddr, 0x0a0a_0a0a, 1024 + (n % 60_000) as u16, 80, 6);
        let ctx = PickCtx {
            key: &key,
            conns: &[],
            rand: 0,
            now: 1,
        };
        let id = SchedState::new(svc, &snap).pick(svc, &snap, &snap.tables[0], &ctx);
        let addr = id.and_then(|id| snap.dests[id as usize].as_ref().map(|d| d.addr));
        match addr {
            Some(a) => drop(picked.insert(a)),
            None => none += 1,
        }
        for b in format!("{addr:?}").bytes() {
            digest = (digest ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
    }
    (digest, picked.len(), none)
}

#[test]
fn processes_with_different_histories_pick_alike() {
    let exe = std::env::current_exe().unwrap();
    let digests: Vec<String> = ["0", "1", "2", "3"]
        .iter()
        .map(|history| {
            let out = std::process::Command::new(&exe)
                .args([
                    "--exact",
                    "daemon::agreement::child",
                    "--include-ignored",
                    "--nocapture",
                ])
                .env(ENV, history)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.lines()
                .find_map(|l| l.strip_prefix("picks "))
                .unwrap_or_else(|| panic!("history {history}: {text}"))
                .to_string()
        })
        .collect();
    // Every flow got a real server, and every real server got flows.
    assert!(digests[0].ends_with(" 5 0"), "{digests:?}");
    assert_eq!(digests[0], digests[1], "{digests:?}");
    assert_eq!(digests[0], digests[2], "{digests:?}");
    assert_eq!(
        digests[0], digests[3],
        "the order of the list does not matter"
    );
}

/// One process's part (run by the test above).
#[test]
#[ignore = "run by processes_with_different_histories_pick_alike"]
fn child() {
    if let Ok(history) = std::env::var(ENV) {
        let (digest, picked, none) = picks(&history);
        println!("picks {digest:016x} {picked} {none}");
    }
}
