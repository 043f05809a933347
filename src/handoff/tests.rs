//! Unit tests of the handoff packets: round trips, the largest packet, refusals, the descriptors
//! each carries.

use proptest::prelude::*;

use super::*;

#[test]
fn every_message_comes_back_as_it_went() {
    for message in [
        Message::Park(vec![(1, 0), (2, NO_SLOT), (u64::MAX, 7)]),
        Message::Release(vec![7]),
        Message::Release(vec![]),
        Message::Adopt((1..=MAX_FDS as u64).map(|id| (id, id as u32)).collect()),
        Message::PositionFile,
        Message::Adopted,
        Message::HandOver,
        Message::Carry,
    ] {
        let packet = message.encode();
        assert!(packet.len() <= message.max_len(), "{message:?}");
        assert_eq!(Message::decode(&packet), Ok(message));
    }
}

#[test]
fn the_largest_packet_fits() {
    // Ids of ten bytes each (a varint carries 7 bits a byte).
    let longest = u64::MAX - MAX_RELEASES as u64 + 1..=u64::MAX;
    let most = Message::Release(longest.clone().collect());
    assert_eq!(most.encode().len(), MAX_PACKET);
    assert!(most.max_len() >= MAX_PACKET);
    for list in [
        Message::Park(longest.clone().take(MAX_FDS).map(|id| (id, u32::MAX)).collect()),
        Message::Adopt(longest.take(MAX_FDS).map(|id| (id, u32::MAX)).collect()),
    ] {
        assert!(list.encode().len() < 3_800, "{}", list.encode().len());
        assert!(list.encode().len() <= list.max_len());
    }
    assert_eq!(MAX_PACKET, 10_244);
    assert_eq!(
        [0, 127, 128, 16_383, 16_384, u64::MAX].map(varint_len),
        [1, 1, 2, 2, 3, 10]
    );
}

#[test]
fn a_malformed_packet_is_refused() {
    use crate::versioned::Refused;
    use postcard::Error::*;
    let refused = |refused| Err(Malformed::Versioned(refused));
    assert_eq!(Message::decode(b""), refused(Refused::Empty));
    // Another version's packet (not a letter: a letter starts a packet of the unversioned layout).
    let version = |found| Refused::Version {
        found,
        expected: VERSION,
    };
    assert_eq!(Message::decode(&[VERSION + 1, 3]), refused(version(VERSION + 1)));
    assert_eq!(Message::decode(b"Z12345678"), refused(version(b'Z')));
    assert!(
        matches!(Message::decode(b"P12345678"), Err(Malformed::Unversioned(_))),
        "an unversioned park of half a session"
    );
    let unreadable = |e| refused(Refused::Unreadable(e));
    assert_eq!(Message::decode(&[VERSION]), unreadable(DeserializeUnexpectedEnd));
    assert_eq!(
        Message::decode(&[VERSION, 7]),
        unreadable(SerdeDeCustom),
        "no such message"
    );
    // Park, of two sessions, but one.
    assert_eq!(
        Message::decode(&[VERSION, 0, 2, 1, 0]),
        unreadable(DeserializeUnexpectedEnd)
    );
    // Release, of one session whose id is cut short.
    assert_eq!(
        Message::decode(&[VERSION, 1, 1, 0x80]),
        unreadable(DeserializeUnexpectedEnd)
    );
    let mut past_u64 = vec![VERSION, 1, 1];
    past_u64.extend([0xff; 9]);
    past_u64.push(0x02);
    assert_eq!(Message::decode(&past_u64), unreadable(DeserializeBadVarint));
    assert_eq!(Message::decode(&[VERSION, 4, b'x']), refused(Refused::Trailing(1)));
    let packet = Message::Park(vec![(1, 0), (300, 2)]).encode();
    for cut in 0..packet.len() {
        assert!(Message::decode(&packet[..cut]).is_err(), "cut to {cut} bytes");
    }
}

#[test]
fn a_packet_of_another_version_says_so() {
    let error = Message::decode(b"Z12345678").unwrap_err().to_string();
    assert_eq!(
        error,
        format!("a malformed handoff packet: format version 90, not {VERSION}: its writer runs another build")
    );
}

#[test]
fn descriptors_ride_with_parks_and_adoptions_only() {
    assert_eq!(Message::Park(vec![(1, 0), (2, 1)]).fds(), 2);
    assert_eq!(Message::Adopt(vec![(3, 0)]).fds(), 1);
    assert_eq!(Message::PositionFile.fds(), 1);
    assert_eq!(Message::Carry.fds(), 1);
    assert_eq!(Message::Release(vec![1, 2]).fds(), 0);
    assert_eq!(Message::HandOver.fds(), 0);
}

fn message() -> impl Strategy<Value = Message> {
    let parked = prop::collection::vec((any::<u64>(), any::<u32>()), 0..300);
    prop_oneof![
        parked.clone().prop_map(Message::Park),
        prop::collection::vec(any::<u64>(), 0..MAX_RELEASES).prop_map(Message::Release),
        parked.prop_map(Message::Adopt),
        Just(Message::PositionFile),
        Just(Message::Adopted),
        Just(Message::HandOver),
        Just(Message::Carry),
    ]
}

proptest! {
    #[test]
    fn any_message_comes_back_within_its_bound(message in message()) {
        let packet = message.encode();
        prop_assert!(packet.len() <= message.max_len());
        prop_assert_eq!(Message::decode(&packet), Ok(message));
    }

    #[test]
    fn decoding_any_packet_never_panics(
        version in prop_oneof![Just(VERSION), any::<u8>()],
        bytes in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let _ = Message::decode(&[&[version][..], &bytes].concat());
    }
}
