//! The full-screen live view's loop: terminal setup and teardown, keyboard input, the watch feed,
//! and a once-a-second redraw so ages stay true. All decisions are in `app.rs`; drawing in `render.rs`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ratatui::crossterm::event::{self, Event};
use tokio::sync::mpsc;

use super::app::{Action, App};
use super::client::{self, Error, Feed};
use super::render;
use super::sections::Theme;

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Reads terminal input on a plain thread (crossterm's reader blocks) until `stop` is set or the
/// receiver is gone.
fn spawn_input(tx: mpsc::Sender<Event>, stop: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match event::poll(Duration::from_millis(100)) {
                Ok(true) => match event::read() {
                    Ok(e) => {
                        if tx.blocking_send(e).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                },
                Ok(false) => {}
                Err(_) => return,
            }
        }
    });
}

/// Runs the live view until the user quits.
pub async fn run(url: String, token: Option<String>, package_limit: u32, theme: Theme) -> Result<(), Error> {
    let (feed_tx, mut feed) = mpsc::channel::<Feed>(1024);
    let watcher = tokio::spawn(client::watch_forever(url.clone(), token.clone(), package_limit, feed_tx.clone()));
    let projections = tokio::spawn(client::projections_forever(url.clone(), token, feed_tx));
    // Installs a panic hook that restores the terminal, enters raw mode and the alternate screen.
    let mut terminal = ratatui::try_init()?;
    let (key_tx, mut keys) = mpsc::channel::<Event>(64);
    let stop = Arc::new(AtomicBool::new(false));
    spawn_input(key_tx, stop.clone());
    let mut app = App::new(url, package_limit as usize);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let result = loop {
        let mut max_scroll = 0;
        if let Err(e) = terminal.draw(|f| max_scroll = render::draw(f, &app, now_ms(), theme)) {
            break Err(Error::Terminal(e));
        }
        app.clamp_scroll(max_scroll);
        tokio::select! {
            input = keys.recv() => match input {
                Some(Event::Key(k)) => {
                    if app.on_key(k) == Action::Quit {
                        break Ok(());
                    }
                }
                Some(_) => {} // resize and the rest: the next draw takes the new size
                None => break Ok(()), // the terminal went away
            },
            f = feed.recv() => {
                let Some(f) = f else { break Ok(()) };
                app.on_feed(f);
                // Fold a burst (bounded, so a flood still lets keys through) before drawing again.
                for _ in 0..1000 {
                    let Ok(f) = feed.try_recv() else { break };
                    app.on_feed(f);
                }
            }
            _ = tick.tick() => {}
        }
    };
    stop.store(true, Ordering::Relaxed);
    watcher.abort();
    projections.abort();
    ratatui::restore();
    result
}
