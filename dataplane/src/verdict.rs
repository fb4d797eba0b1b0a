//! What the pipeline decides for each frame, and why frames are dropped.

/// The outcome of processing one frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The frame was rewritten in place; send it out of the interface it came in on.
    Tx,
    /// Rewritten in place; send it out of the internal interface (two-arm NAT).
    TxInternal,
    /// The frame goes no further; the reason is counted.
    Drop(DropReason),
}

crate::labelled_enum! {
    /// Why a frame was dropped. Also the `reason` label of the drop counter in /metrics:
    /// one enum, so a new reason cannot be forgotten in either place.
    pub enum DropReason {
        Truncated => "truncated": "A header is cut short.",
        Malformed => "malformed": "A header field is impossible (another than those below).",
        NotIp => "not_ip": "Neither IPv4 nor IPv6; the steering program should have passed it to the kernel.",
        BadIpVersion => "bad_ip_version": "An IPv4 or IPv6 EtherType with another IP version in the header.",
        BadIpHeaderLen => "bad_ip_header_len": "IPv4 header length (IHL) below 5 words.",
        BadIpLength => "bad_ip_length": "IPv4 total length shorter than its headers or longer than the frame, or IPv6 payload length past the frame.",
        BadIpChecksum => "bad_ip_checksum": "IPv4 header checksum wrong.",
        MartianSource => "martian_source": "Source 0/8, 127/8, multicast, 255.255.255.255, ::, ::1, ff00::/8, ::ffff:0:0/96, a VIP or the director's own.",
        L2Multicast => "l2_multicast": "A VIP's packet in an Ethernet broadcast or multicast frame.",
        PortZero => "port_zero": "Source or destination port 0.",
        BadTcpOffset => "bad_tcp_offset": "TCP data offset below 5 words or past the segment.",
        BadTcpFlags => "bad_tcp_flags": "A TCP flag combination no stack sends (SYN+FIN, SYN+RST, none, FIN/PSH/URG without ACK).",
        BadUdpLength => "bad_udp_length": "UDP length below 8 or past the IP payload.",
        NoFlow => "no_flow": "A TCP packet other than a SYN for no known flow (sloppy_tcp off).",
        Fragment => "fragment": "An IPv4 or IPv6 fragment: no ports to schedule on.",
        ExtHeaders => "ext_headers": "An IPv6 extension header chain too long (over 4), truncated, or with hop-by-hop options not first.",
        SourceRoute => "source_route": "An IPv4 loose or strict source route option, or an IPv6 routing header with segments left (the kernel drops them, source routing being off).",
        NoService => "no_service": "No virtual service matches (removed by a reload in flight).",
        NoDestination => "no_destination": "The service has no real server that can take a connection.",
        DestUnavailable => "dest_unavailable": "The flow's real server left the configuration (policy drop or expire).",
        FullnatNoPort => "fullnat_no_port": "A new FullNAT connection found every local address and port of its pool (this worker's share) in use.",
        TooBig => "too_big": "Too big for the tunnel and fragmentable (DF clear): not fragmented.",
        NoHeadroom => "no_headroom": "No room in front of the frame for the tunnel header.",
        TxRingFull => "tx_ring_full": "The socket's TX ring had no room.",
        InvalidDescriptor => "invalid_descriptor": "The kernel handed an RX descriptor outside the UMEM.",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_snake_case() {
        crate::labelled::check_labels(DropReason::ALL, DropReason::label, DropReason::index);
    }
}
