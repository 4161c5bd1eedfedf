//! From a captured frame to its UDP payload: Ethernet (with 802.1Q / 802.1ad
//! VLAN tags), Linux cooked capture (SLL) or raw IP, then IPv4 and UDP.
//!
//! IEX publishes over IPv4 multicast UDP, so anything else in a pcap (ARP,
//! IGMP, IPv6, TCP) is not damage but other traffic: it is reported as
//! [`Datagram::Other`] and skipped. Damage (cut or inconsistent headers, a
//! fragment that cannot be decoded alone) is an error with a reason.

use std::ops::Range;

/// LINKTYPE_ETHERNET: IEEE 802.3 Ethernet.
pub const LINKTYPE_ETHERNET: u32 = 1;
/// LINKTYPE_RAW: a raw IPv4 or IPv6 packet, no link-layer header.
pub const LINKTYPE_RAW: u32 = 101;
/// LINKTYPE_LINUX_SLL: Linux "cooked" capture (`tcpdump -i any`; a link type, not a file format).
pub const LINKTYPE_LINUX_SLL: u32 = 113;
/// LINKTYPE_IPV4: a raw IPv4 packet.
pub const LINKTYPE_IPV4: u32 = 228;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_QINQ: u16 = 0x88A8;
const ETHERTYPE_QINQ_OLD: u16 = 0x9100;
const IP_PROTOCOL_UDP: u8 = 17;
const UDP_HEADER_LEN: usize = 8;

/// What a frame carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Datagram {
    /// A UDP datagram; the range is its payload within the frame.
    Udp(Range<usize>),
    /// Traffic that cannot carry IEX data (not IPv4, or not UDP).
    Other,
}

/// Finds the UDP payload in a frame of the given link type.
///
/// The payload is bounded by the IPv4 total length and the UDP length, not by
/// the frame's end, because Ethernet pads short frames and some pcap files keep
/// the frame check sequence.
pub fn udp_payload(link_type: u32, frame: &[u8]) -> Result<Datagram, &'static str> {
    let ip_start = match link_type {
        LINKTYPE_ETHERNET => match ethernet(frame)? {
            Some(start) => start,
            None => return Ok(Datagram::Other),
        },
        LINKTYPE_LINUX_SLL => {
            // packet type, ARPHRD type, address length, address (8), protocol
            let protocol = be_u16(frame, 14).ok_or("Linux cooked header cut short")?;
            if protocol != ETHERTYPE_IPV4 {
                return Ok(Datagram::Other);
            }
            16
        }
        LINKTYPE_RAW | LINKTYPE_IPV4 => 0,
        _ => return Err("unsupported link type (expected Ethernet, Linux cooked or raw IPv4)"),
    };
    ipv4_udp(frame, ip_start)
}

/// The offset of the IPv4 header in an Ethernet frame, or `None` when the
/// frame carries something else.
fn ethernet(frame: &[u8]) -> Result<Option<usize>, &'static str> {
    let mut offset = 12;
    let mut ether_type = be_u16(frame, offset).ok_or("Ethernet header cut short")?;
    // Each tag is 4 bytes (TPID, TCI) before the real EtherType; the loop ends
    // because every tag moves past 4 more bytes of a finite frame.
    while matches!(ether_type, ETHERTYPE_VLAN | ETHERTYPE_QINQ | ETHERTYPE_QINQ_OLD) {
        offset += 4;
        ether_type = be_u16(frame, offset).ok_or("VLAN tag cut short")?;
    }
    Ok((ether_type == ETHERTYPE_IPV4).then_some(offset + 2))
}

fn ipv4_udp(frame: &[u8], start: usize) -> Result<Datagram, &'static str> {
    let ip = frame.get(start..).unwrap_or_default();
    let Some(&first) = ip.first() else {
        return Err("IPv4 header cut short");
    };
    match first >> 4 {
        4 => {}
        // Raw-IP link types carry IPv6 too; IEX does not publish over it.
        6 => return Ok(Datagram::Other),
        _ => return Err("not an IPv4 header"),
    }
    let header_len = usize::from(first & 0x0F) * 4;
    if header_len < 20 || ip.len() < header_len {
        return Err("IPv4 header cut short or with a bad length");
    }
    let total_len = usize::from(be_u16(ip, 2).unwrap_or_default());
    if total_len < header_len || total_len > ip.len() {
        return Err("IPv4 total length disagrees with the captured bytes (cut by the snap length?)");
    }
    let flags_fragment = be_u16(ip, 6).unwrap_or_default();
    // More-fragments set or a fragment offset: only the reassembled datagram
    // would decode, and IEX packets fit one MTU.
    if flags_fragment & 0x3FFF != 0 {
        return Err("fragmented IPv4 datagram");
    }
    if ip.get(9) != Some(&IP_PROTOCOL_UDP) {
        return Ok(Datagram::Other);
    }
    let udp_start = start + header_len;
    let ip_end = start + total_len;
    let udp_len = usize::from(be_u16(frame, udp_start + 4).ok_or("UDP header cut short")?);
    if udp_len < UDP_HEADER_LEN || udp_start + udp_len > ip_end {
        return Err("UDP length disagrees with the IPv4 packet");
    }
    Ok(Datagram::Udp(udp_start + UDP_HEADER_LEN..udp_start + udp_len))
}

fn be_u16(bytes: &[u8], at: usize) -> Option<u16> {
    let raw = bytes.get(at..at.checked_add(2)?)?;
    Some(u16::from_be_bytes([*raw.first()?, *raw.get(1)?]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ethernet + IPv4 + UDP around `payload`, with optional VLAN tags.
    fn frame(vlans: usize, protocol: u8, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x01, 0x00, 0x5e, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        for _ in 0..vlans {
            f.extend_from_slice(&[0x81, 0x00, 0x00, 0x64]);
        }
        f.extend_from_slice(&[0x08, 0x00]);
        let total = (20 + 8 + payload.len()) as u16;
        f.extend_from_slice(&[0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, protocol, 0, 0]);
        let n = f.len();
        f[n - 10..n - 8].copy_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&[10, 0, 0, 1, 233, 215, 21, 4]);
        f.extend_from_slice(&[0x28, 0x0a, 0x28, 0x0a]);
        f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(payload);
        f
    }

    fn payload_of(link_type: u32, f: &[u8]) -> Result<Option<Vec<u8>>, &'static str> {
        Ok(match udp_payload(link_type, f)? {
            Datagram::Udp(range) => Some(f[range].to_vec()),
            Datagram::Other => None,
        })
    }

    #[test]
    fn finds_the_payload_through_vlan_tags_and_padding() {
        for vlans in 0..3 {
            let mut f = frame(vlans, IP_PROTOCOL_UDP, b"hello");
            f.extend_from_slice(&[0; 20]); // Ethernet padding / FCS
            assert_eq!(
                payload_of(LINKTYPE_ETHERNET, &f),
                Ok(Some(b"hello".to_vec())),
                "{vlans} tags"
            );
        }
    }

    #[test]
    fn raw_ipv4_and_linux_cooked_captures() {
        let f = frame(0, IP_PROTOCOL_UDP, b"abc");
        assert_eq!(payload_of(LINKTYPE_RAW, &f[14..]), Ok(Some(b"abc".to_vec())));
        assert_eq!(payload_of(LINKTYPE_IPV4, &f[14..]), Ok(Some(b"abc".to_vec())));
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&f[12..]);
        assert_eq!(payload_of(LINKTYPE_LINUX_SLL, &sll), Ok(Some(b"abc".to_vec())));
    }

    #[test]
    fn other_traffic_is_skipped_and_damage_is_an_error() {
        let tcp = frame(0, 6, b"abc");
        assert_eq!(payload_of(LINKTYPE_ETHERNET, &tcp), Ok(None));
        let mut arp = frame(0, IP_PROTOCOL_UDP, b"abc");
        arp[12..14].copy_from_slice(&[0x08, 0x06]);
        assert_eq!(payload_of(LINKTYPE_ETHERNET, &arp), Ok(None));
        let udp = frame(0, IP_PROTOCOL_UDP, b"abcdef");
        for cut in 0..udp.len() {
            assert!(payload_of(LINKTYPE_ETHERNET, &udp[..cut]).is_err(), "cut at {cut}");
        }
        let mut fragment = udp.clone();
        fragment[20] = 0x20; // more fragments
        assert_eq!(
            payload_of(LINKTYPE_ETHERNET, &fragment),
            Err("fragmented IPv4 datagram")
        );
        assert!(payload_of(999, &udp).is_err());
    }
}
