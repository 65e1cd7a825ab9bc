//! An honest player to run beside an attack: what a server under attack must not harm.

use crate::TestServer;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
/// An honest player for tests that attack the server while it plays: it joins over
/// WebSocket with the bots library, flies with the AI pilot (an input every tick), verifies
/// every frame against its checksum, and notes the longest wait between two frames, so a
/// server that stalled under attack shows up even if it recovered.
pub struct Honest {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<HonestReport>,
}

/// What an [`Honest`] player saw.
#[derive(Debug)]
pub struct HonestReport {
    /// Frames, keyframes, desyncs, acks.
    pub stats: bots::Stats,
    /// The last input sequence number sent.
    pub last_seq: u32,
    /// The longest time between two verified frames (and from the last one to the end).
    pub longest_gap: Duration,
    /// The close code and reason the server answered the player's `Leave` with.
    pub left: Option<(u16, String)>,
    /// What ended the session early, if anything did.
    pub error: Option<String>,
}

/// The longest pause between two frames an honest player accepts. The room sends 30 a second;
/// this catches a server (or a room) that stalled, not a shared 2-core machine under load,
/// where a test process can be starved for a couple of seconds.
pub const MAX_FRAME_GAP: Duration = Duration::from_secs(5);

impl HonestReport {
    /// Panics unless the player played undisturbed: no error, no desync, one keyframe then
    /// deltas only, acks in order up to the last input sent, no long silence, and its `Leave`
    /// answered with 1000.
    pub fn assert_clean(&self) {
        let s = &self.stats;
        assert!(self.error.is_none(), "honest player: {:?}", self.error);
        assert_eq!(s.desyncs, 0, "honest player: every frame verified");
        assert_eq!(s.keyframes, 1, "honest player: one keyframe, then deltas");
        assert!(s.acks_monotonic, "honest player: acks never went backwards");
        assert!(self.last_seq > 0, "honest player sent inputs");
        assert_eq!(
            s.highest_ack, self.last_seq,
            "honest player: every input acknowledged"
        );
        assert_eq!(
            self.left.as_ref().map(|l| l.0),
            Some(game_core::protocol::close::NORMAL),
            "honest player: Leave answered with a normal close: {:?}",
            self.left
        );
        assert!(
            self.longest_gap < MAX_FRAME_GAP,
            "honest player: frames kept coming (longest gap {:?}, {} frames)",
            self.longest_gap,
            s.frames
        );
    }
}

impl Honest {
    /// Joins `room` and plays; returns once the first frame has been verified.
    pub async fn start(server: &TestServer, room: &str, seed: u64) -> Self {
        let opts = bots::ConnectOptions::new(&server.url(), room, bots::Role::Player)
            .unwrap_or_else(|e| panic!("honest player options: {e}"));
        let conn = bots::connect(&opts, bots::Resume::default())
            .await
            .unwrap_or_else(|e| panic!("honest player join: {e}"));
        let (ready, playing) = oneshot::channel();
        let (stop, stopped) = oneshot::channel();
        let mut task = tokio::spawn(honest_play(conn, seed, ready, stopped));
        if tokio::time::timeout(Duration::from_secs(5), playing)
            .await
            .is_ok_and(|r| r.is_ok())
        {
            return Self {
                stop: Some(stop),
                task,
            };
        }
        task.abort();
        let report = (&mut task).await;
        panic!("honest player got no first frame: {report:?}");
    }

    /// Stops playing, waits (bounded) for the last input's ack, leaves, and reports.
    pub async fn finish(mut self) -> HonestReport {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(15), &mut self.task)
            .await
            .unwrap_or_else(|_| panic!("honest player did not finish"))
            .unwrap_or_else(|e| panic!("honest player task: {e}"))
    }
}

async fn honest_play(
    conn: bots::Connection,
    seed: u64,
    ready: oneshot::Sender<()>,
    mut stop: oneshot::Receiver<()>,
) -> HonestReport {
    use tokio::time::Instant;
    let bots::Connection {
        welcome,
        mut writer,
        mut reader,
    } = conn;
    let mut replica = game_core::replica::Replica::new();
    let mut stats = bots::Stats::new();
    let mut pilot = game_core::ai::Pilot::new(seed);
    let period = Duration::from_secs_f64(1.0 / f64::from(welcome.tick_rate.max(1)));
    let mut ticks = tokio::time::interval(period);
    // A late tick sends one input, not a burst that would look like a flood.
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut ready = Some(ready);
    let mut last_frame: Option<Instant> = None;
    let mut longest_gap = Duration::ZERO;
    let mut error = loop {
        tokio::select! {
            _ = &mut stop => break None,
            event = reader.next_event(&mut replica, &mut stats) => match event {
                Ok(bots::Event::Frame(_)) => {
                    let now = Instant::now();
                    if let Some(prev) = last_frame {
                        longest_gap = longest_gap.max(now - prev);
                    }
                    last_frame = Some(now);
                    if let Some(r) = ready.take() {
                        let _ = r.send(());
                    }
                }
                Ok(_) => {}
                Err(e) => break Some(e.to_string()),
            },
            _ = ticks.tick(), if ready.is_none() => {
                let input = match replica.snapshot() {
                    Some(view) => pilot.think(welcome.entity, view, &welcome.arena),
                    None => game_core::protocol::Input::default(),
                };
                if let Err(e) = writer.send_input(input).await {
                    break Some(e.to_string());
                }
                stats.inputs_sent += 1;
            }
        }
    };
    if let Some(prev) = last_frame {
        longest_gap = longest_gap.max(prev.elapsed());
    }
    let last_seq = writer.last_seq();
    let mut left = None;
    if error.is_none() {
        let deadline = Instant::now() + Duration::from_secs(5);
        while stats.highest_ack < last_seq {
            match tokio::time::timeout_at(deadline, reader.next_event(&mut replica, &mut stats))
                .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    error = Some(e.to_string());
                    break;
                }
                Err(_) => break,
            }
        }
        // Leave for good, and read to the server's answer: a socket dropped with frames
        // unread is reset, and the server may never see the `Leave`.
        if let Err(e) = writer.leave().await {
            error = Some(e.to_string());
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while left.is_none() && error.is_none() {
            match tokio::time::timeout_at(deadline, reader.next_event(&mut replica, &mut stats))
                .await
            {
                Ok(Ok(_)) => {}
                Ok(Err(bots::ClientError::Closed(info))) => left = Some((info.code, info.reason)),
                Ok(Err(e)) => error = Some(format!("after Leave: {e}")),
                Err(_) => error = Some("no close after Leave".to_owned()),
            }
        }
    }
    HonestReport {
        stats,
        last_seq,
        longest_gap,
        left,
        error,
    }
}
