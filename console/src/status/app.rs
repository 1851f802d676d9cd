//! The live view's state and how keys and watch events change it. Pure: the terminal loop in
//! `live.rs` feeds it, `render.rs` draws it, and tests drive it without a terminal.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use super::client::{Feed, Link};
use super::model::Fleet;
use super::sections::Section;

/// What the loop should do after a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    Quit,
}

/// The live view.
#[derive(Debug)]
pub struct App {
    /// The catcher's URL, for the header.
    pub url: String,
    /// The fleet as the stream says it is now.
    pub fleet: Fleet,
    /// While paused: the fleet as it was when paused; the screen shows this.
    pub frozen: Option<Fleet>,
    /// Link to the catcher.
    pub link: Link,
    pub section: Section,
    /// Scroll offset per section.
    pub scroll: [usize; Section::ALL.len()],
    /// The package filter in effect.
    pub filter: String,
    /// The filter being typed, while `/` is active.
    pub editing: Option<String>,
    /// Whether the key help is shown.
    pub help: bool,
}

/// Lines a page key scrolls.
const PAGE: usize = 10;

impl App {
    pub fn new(url: String, package_limit: usize) -> Self {
        Self {
            url,
            fleet: Fleet::new(package_limit),
            frozen: None,
            link: Link::Connecting { attempt: 0 },
            section: Section::Overview,
            scroll: [0; Section::ALL.len()],
            filter: String::new(),
            editing: None,
            help: false,
        }
    }

    /// The fleet the screen shows.
    pub fn shown(&self) -> &Fleet {
        self.frozen.as_ref().unwrap_or(&self.fleet)
    }

    /// Changes received while paused, not yet on screen.
    pub fn held(&self) -> u64 {
        match &self.frozen {
            // A snapshot resets the delta count, so count it as one change at least.
            Some(f) if f.deltas != self.fleet.deltas || f.status != self.fleet.status => {
                self.fleet.deltas.abs_diff(f.deltas).max(1)
            }
            _ => 0,
        }
    }

    pub fn on_feed(&mut self, feed: Feed) {
        match feed {
            Feed::Event(e) => self.fleet.apply(*e),
            Feed::Link(l) => self.link = l,
            Feed::Projections(p) => self.fleet.server_projections = Some(*p),
            Feed::RecoveryPoints(p) => self.fleet.recovery_points = Some(*p),
        }
    }

    fn scroll_mut(&mut self) -> &mut usize {
        &mut self.scroll[self.section.index()]
    }

    /// Keeps the current section's scroll within what there is to see.
    pub fn clamp_scroll(&mut self, max: usize) {
        let s = self.scroll_mut();
        *s = (*s).min(max);
    }

    fn switch(&mut self, section: Section) {
        self.section = section;
        self.help = false;
    }

    pub fn on_key(&mut self, key: KeyEvent) -> Action {
        if key.kind == KeyEventKind::Release {
            return Action::Continue;
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        if let Some(text) = &mut self.editing {
            match key.code {
                KeyCode::Enter => {
                    self.filter = text.trim().to_owned();
                    self.editing = None;
                    self.scroll[Section::Packages.index()] = 0;
                }
                KeyCode::Esc => {
                    self.filter.clear();
                    self.editing = None;
                }
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Char(c) if text.chars().count() < 64 => text.push(c),
                _ => {}
            }
            return Action::Continue;
        }
        let all = Section::ALL;
        let i = self.section.index();
        match key.code {
            KeyCode::Char('q') => return Action::Quit,
            KeyCode::Esc if self.help => self.help = false,
            KeyCode::Esc => self.filter.clear(),
            KeyCode::Char('?') => self.help = !self.help,
            KeyCode::Tab | KeyCode::Right | KeyCode::Char('l') => self.switch(all[(i + 1) % all.len()]),
            KeyCode::BackTab | KeyCode::Left | KeyCode::Char('h') => self.switch(all[(i + all.len() - 1) % all.len()]),
            KeyCode::Char(c @ '1'..='7') => self.switch(all[c as usize - '1' as usize]),
            KeyCode::Down | KeyCode::Char('j') => *self.scroll_mut() = self.scroll_mut().saturating_add(1),
            KeyCode::Up | KeyCode::Char('k') => *self.scroll_mut() = self.scroll_mut().saturating_sub(1),
            KeyCode::PageDown => *self.scroll_mut() = self.scroll_mut().saturating_add(PAGE),
            KeyCode::PageUp => *self.scroll_mut() = self.scroll_mut().saturating_sub(PAGE),
            KeyCode::Home | KeyCode::Char('g') => *self.scroll_mut() = 0,
            KeyCode::End | KeyCode::Char('G') => *self.scroll_mut() = usize::MAX,
            KeyCode::Char('/') => {
                self.switch(Section::Packages);
                self.editing = Some(self.filter.clone());
            }
            KeyCode::Char('p') | KeyCode::Char(' ') => {
                self.frozen = match self.frozen.take() {
                    Some(_) => None,
                    None => Some(self.fleet.clone()),
                };
            }
            _ => {}
        }
        Action::Continue
    }
}

#[cfg(test)]
mod tests {
    use edgebackup_proto::v1 as pb;

    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn type_text(app: &mut App, text: &str) {
        for c in text.chars() {
            app.on_key(key(KeyCode::Char(c)));
        }
    }

    #[test]
    fn keys_switch_sections_and_wrap() {
        let mut app = App::new("http://x".into(), 10);
        app.on_key(key(KeyCode::Char('3')));
        assert_eq!(app.section, Section::Clients);
        app.on_key(key(KeyCode::Tab));
        assert_eq!(app.section, Section::Rules);
        app.on_key(key(KeyCode::Char('1')));
        app.on_key(key(KeyCode::BackTab));
        assert_eq!(app.section, Section::Alerts, "left from the first wraps to the last");
        assert_eq!(app.on_key(key(KeyCode::Char('q'))), Action::Quit);
        assert_eq!(app.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)), Action::Quit);
    }

    #[test]
    fn scrolling_is_per_section_and_clamped() {
        let mut app = App::new("http://x".into(), 10);
        app.on_key(key(KeyCode::Char('2')));
        app.on_key(key(KeyCode::PageDown));
        app.on_key(key(KeyCode::Down));
        assert_eq!(app.scroll[Section::Packages.index()], 11);
        app.clamp_scroll(4);
        assert_eq!(app.scroll[Section::Packages.index()], 4);
        app.on_key(key(KeyCode::Up));
        assert_eq!(app.scroll[Section::Packages.index()], 3);
        assert_eq!(app.scroll[Section::Overview.index()], 0);
        app.on_key(key(KeyCode::End));
        app.clamp_scroll(7);
        assert_eq!(app.scroll[Section::Packages.index()], 7);
        app.on_key(key(KeyCode::Home));
        assert_eq!(app.scroll[Section::Packages.index()], 0);
    }

    #[test]
    fn slash_edits_the_filter_enter_applies_esc_clears() {
        let mut app = App::new("http://x".into(), 10);
        app.on_key(key(KeyCode::Char('/')));
        assert_eq!(app.section, Section::Packages);
        type_text(&mut app, "repx");
        app.on_key(key(KeyCode::Backspace));
        assert_eq!(app.on_key(key(KeyCode::Char('q'))), Action::Continue, "q is text while typing");
        assert_eq!(app.editing.as_deref(), Some("repq"));
        app.on_key(key(KeyCode::Backspace));
        app.on_key(key(KeyCode::Enter));
        assert_eq!(app.filter, "rep");
        assert_eq!(app.editing, None);
        app.on_key(key(KeyCode::Esc));
        assert_eq!(app.filter, "");
    }

    #[test]
    fn pause_freezes_the_screen_while_the_stream_goes_on() {
        let mut app = App::new("http://x".into(), 10);
        app.on_feed(Feed::Event(Box::new(pb::WatchEvent {
            kind: Some(pb::watch_event::Kind::Snapshot(Default::default())),
        })));
        app.on_key(key(KeyCode::Char('p')));
        let changed = pb::Package { package_id: "01a".into(), ..Default::default() };
        app.on_feed(Feed::Event(Box::new(pb::WatchEvent {
            kind: Some(pb::watch_event::Kind::PackageChanged(changed)),
        })));
        assert!(app.shown().packages.is_empty(), "the paused screen does not move");
        assert_eq!(app.fleet.packages.len(), 1, "but the change is kept");
        assert_eq!(app.held(), 1);
        app.on_key(key(KeyCode::Char('p')));
        assert_eq!(app.shown().packages.len(), 1);
        assert_eq!(app.held(), 0);
    }
}
