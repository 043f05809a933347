//! The waits between tries to reach Redis, on tokio's paused clock.

use super::*;

#[tokio::test(start_paused = true)]
async fn tries_wait_longer_each_time_up_to_a_second_and_start_over_once_redis_is_reached() {
    let ms = Duration::from_millis;
    let mut outage = Outage::new("cannot reach Redis");
    assert_eq!(outage.over(), None, "no outage yet");
    for wait in [ms(50), ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)] {
        let before = tokio::time::Instant::now();
        outage.wait(&"refused").await;
        assert_eq!(before.elapsed(), wait);
    }
    assert!(outage.over().is_some(), "an outage, over");
    assert_eq!(outage.over(), None, "over once");
    let before = tokio::time::Instant::now();
    outage.pause().await;
    assert_eq!(before.elapsed(), ms(50), "from the shortest wait again");
    assert_eq!(outage.over(), None, "a pause alone is no outage");
}
