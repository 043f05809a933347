//! Acknowledgements stop at the first frame still open.

use super::*;

const T: FrontendId = 1;

#[derive(Debug, Clone, Copy)]
enum Step {
    Arrived(u64),
    Done(u64),
    /// What `take_done` says for T at this point.
    Told(Option<u64>),
}
use Step::*;

#[test]
fn a_frontend_is_told_the_frames_done_up_to_the_first_still_open_once_each() {
    let table: [(&str, &[Step]); 5] = [
        (
            "in order",
            &[Arrived(1), Told(None), Done(1), Told(Some(1)), Told(None)],
        ),
        (
            "out of order",
            &[
                Arrived(1),
                Arrived(2),
                Arrived(3),
                Done(2),
                Told(None),
                Done(1),
                Told(Some(2)),
                Done(3),
                Told(Some(3)),
            ],
        ),
        (
            "a frame of another process numbered from its hello",
            &[Arrived(7), Done(7), Told(Some(7))],
        ),
        (
            "a frame done twice",
            &[Arrived(1), Done(1), Done(1), Told(Some(1)), Told(None)],
        ),
        ("nothing arrived", &[Done(4), Told(None)]),
    ];
    for (case, steps) in table {
        let mut acks = Acks::default();
        acks.attach(T);
        for (i, step) in steps.iter().enumerate() {
            match *step {
                Arrived(seq) => acks.arrived(T, seq),
                Done(seq) => acks.done((T, seq)),
                Told(upto) => {
                    let told = acks.take_done().into_iter().find(|(f, _)| *f == T).map(|(_, n)| n);
                    assert_eq!(told, upto, "{case}: step {i}");
                }
            }
        }
    }
}

#[test]
fn a_frontend_forgotten_or_attached_again_starts_over() {
    let mut acks = Acks::default();
    acks.arrived(T, 5);
    acks.done((T, 5));
    assert_eq!(acks.take_done(), [(T, 5)]);
    acks.attach(T);
    acks.arrived(T, 2);
    acks.done((T, 2));
    assert_eq!(acks.take_done(), [(T, 2)], "numbered anew by its next process");
    acks.arrived(T, 3);
    acks.forget(T);
    acks.done((T, 3));
    assert_eq!(acks.take_done(), []);
}
