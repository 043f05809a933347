//! Unit tests of the handoff packets: round trips, refusals, the descriptors each carries.

use super::*;

#[test]
fn every_message_comes_back_as_it_went() {
    for message in [
        Message::Park(vec![(1, 0), (2, NO_SLOT), (u64::MAX, 7)]),
        Message::Release(vec![7]),
        Message::Release(vec![]),
        Message::Adopt((1..=MAX_FDS as u64).map(|id| (id, id as u32)).collect()),
        Message::State,
        Message::Adopted,
        Message::HandOver,
        Message::Carry,
    ] {
        assert_eq!(Message::decode(&message.encode()), Ok(message));
    }
    let most = Message::Release((0..MAX_RELEASES as u64).collect()).encode();
    assert_eq!(most.len(), MAX_PACKET);
}

#[test]
fn a_malformed_packet_is_refused() {
    assert_eq!(Message::decode(b""), Err(Malformed::Empty));
    assert_eq!(Message::decode(b"Z"), Err(Malformed::Tag(b'Z')));
    assert_eq!(Message::decode(b"P12345678"), Err(Malformed::Ragged));
    assert_eq!(Message::decode(b"R1234567"), Err(Malformed::Ragged));
    assert_eq!(Message::decode(b"Ex"), Err(Malformed::Trailing(1)));
}

#[test]
fn descriptors_ride_with_parks_and_adoptions_only() {
    assert_eq!(Message::Park(vec![(1, 0), (2, 1)]).fds(), 2);
    assert_eq!(Message::Adopt(vec![(3, 0)]).fds(), 1);
    assert_eq!(Message::State.fds(), 1);
    assert_eq!(Message::Carry.fds(), 1);
    assert_eq!(Message::Release(vec![1, 2]).fds(), 0);
    assert_eq!(Message::HandOver.fds(), 0);
}
