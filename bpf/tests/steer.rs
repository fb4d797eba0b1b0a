//! The steering program, loaded for real, run over the golden packets with
//! BPF_PROG_TEST_RUN (Katran's fixture style). Needs root and BPF, as every xvs machine has.

use std::ffi::CString;

use libbpf_rs::ProgramInput;
use xvs_bpf::abi::{SvcKey, XdpCounters};
use xvs_bpf::Steer;
use xvs_dataplane::fixtures::{self, VIP, VIP_TCP_PORT, VIP_UDP_PORT};
use xvs_dataplane::xsk::{BindMode, Xsk, XskConfig};

const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;

fn loaded() -> Steer {
    let steer = Steer::load().expect("load the steering program (root and BPF needed)");
    steer
        .set_services(&[
            SvcKey::new(VIP, VIP_TCP_PORT, 6),
            SvcKey::new(VIP, VIP_UDP_PORT, 17),
        ])
        .unwrap();
    steer
}

/// Runs one frame; returns the XDP action and the counters it changed.
fn run(steer: &Steer, frame: &[u8]) -> (u32, XdpCounters) {
    let before = steer.counters().unwrap();
    let input = ProgramInput {
        data_in: Some(frame),
        ..Default::default()
    };
    let out = steer.program().test_run(input).expect("BPF_PROG_TEST_RUN");
    (out.return_value, steer.counters().unwrap().since(&before))
}

/// Moves this test's thread into a new network namespace, so its loopback (where
/// BPF_PROG_TEST_RUN says packets arrive) and the AF_XDP socket bound to it are its own.
fn own_netns() {
    // SAFETY: unshare affects only the calling thread's namespaces.
    let rc = unsafe { libc::unshare(libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "unshare(CLONE_NEWNET): {}",
        std::io::Error::last_os_error()
    );
}

/// An AF_XDP socket on loopback queue 0 of this thread's own namespace.
fn loopback_socket() -> Xsk {
    own_netns();
    let lo = CString::new("lo").unwrap();
    // SAFETY: a valid NUL-terminated name.
    let ifindex = unsafe { libc::if_nametoindex(lo.as_ptr()) };
    let cfg = XskConfig {
        frame_count: 64,
        rx_size: 64,
        tx_size: 64,
        bind: BindMode::Copy,
        ..XskConfig::default()
    };
    Xsk::open(ifindex, 0, &cfg).expect("AF_XDP socket on lo")
}

#[test]
fn golden_packets() {
    let steer = loaded();
    let xsk = loopback_socket();
    steer.register_xsk(0, xsk.fd()).unwrap();
    for fx in fixtures::all() {
        if fx.frame.len() < 14 {
            // The kernel refuses to test-run a frame shorter than an Ethernet header (and
            // no driver delivers one); the pipeline's tests cover it.
            let input = ProgramInput {
                data_in: Some(&fx.frame),
                ..Default::default()
            };
            assert!(steer.program().test_run(input).is_err(), "{}", fx.name);
            continue;
        }
        let (action, delta) = run(&steer, &fx.frame);
        let want = if fx.steer == "steered" {
            XDP_REDIRECT
        } else {
            XDP_PASS
        };
        assert_eq!(action, want, "{}: action", fx.name);
        assert_eq!(delta.get(fx.steer), 1, "{}: counter {}", fx.name, fx.steer);
        assert_eq!(
            delta.values.iter().sum::<u64>(),
            1,
            "{}: exactly one counter",
            fx.name
        );
    }
}

#[test]
fn passes_vip_traffic_while_no_socket_is_bound() {
    let steer = loaded();
    let frame = fixtures::tcp_frame(fixtures::CLIENT, 1, VIP, VIP_TCP_PORT, 2, b"");
    let (action, delta) = run(&steer, &frame);
    assert_eq!(action, XDP_PASS);
    assert_eq!(delta.get("pass_no_socket"), 1);
}

#[test]
fn port_zero_service_takes_every_port() {
    let steer = loaded();
    let xsk = loopback_socket();
    steer.register_xsk(0, xsk.fd()).unwrap();
    let frame = fixtures::tcp_frame(fixtures::CLIENT, 1, VIP, 8443, 2, b"");
    assert_eq!(run(&steer, &frame).0, XDP_PASS);
    steer.set_services(&[SvcKey::new(VIP, 0, 6)]).unwrap();
    assert_eq!(run(&steer, &frame).0, XDP_REDIRECT);
    assert_eq!(
        steer.services(),
        vec![SvcKey::new(VIP, 0, 6)],
        "stale services removed"
    );
}
