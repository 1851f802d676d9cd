//! Draws the live view: header with the link state, section tabs, the scrolled section, key hints.
//! A pure function of the app, the clock and the frame size, so tests render it on `TestBackend`.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::app::App;
use super::client::Link;
use super::format::{fit, span};
use super::sections::{self, Ctx, Section, Theme, Tone};

const HELP: &[&str] = &[
    "keys",
    "",
    "  1-7, Tab, ←/→, h/l     switch section",
    "  ↑/↓, j/k               scroll one line",
    "  PgUp/PgDn              scroll a page",
    "  Home/End, g/G          top / bottom",
    "  /                      filter packages (Enter keeps, Esc clears)",
    "  p, Space               pause / resume the screen (updates are kept)",
    "  ?                      this help",
    "  q, Ctrl-C              quit",
    "",
    "The view follows the catcher's Watch stream: a snapshot, then every change as it happens. \
     Projections come from the catcher (GetProjections, every 15 s), over all packages.",
    "When the catcher goes away it shows the last data and reconnects with backoff.",
];

/// Draws the whole screen; returns the largest useful scroll offset of the current section so the
/// caller can clamp.
pub fn draw(frame: &mut Frame, app: &App, now: i64, theme: Theme) -> usize {
    let area = frame.area();
    if area.height == 0 || area.width == 0 {
        return 0;
    }
    let row = |y: u16, h: u16| Rect { x: area.x, y: area.y + y, width: area.width, height: h };
    frame.render_widget(Paragraph::new(header(app, now, area.width, theme)), row(0, 1));
    if area.height < 3 {
        return 0;
    }
    frame.render_widget(Paragraph::new(tabs(app.section, theme)), row(1, 1));
    frame.render_widget(Paragraph::new(footer(app, theme)), row(area.height - 1, 1));
    // One column of margin on the left, like the header and the tabs.
    let body_area = Rect { x: area.x + 1, width: area.width - 1, ..row(2, area.height.saturating_sub(3)) };
    let (lines, max_scroll) = body(app, now, body_area, theme);
    frame.render_widget(Paragraph::new(lines), body_area);
    max_scroll
}

fn header(app: &App, now: i64, width: u16, t: Theme) -> Line<'static> {
    let (state, tone) = match (&app.link, app.frozen.is_some()) {
        (Link::Live, true) => (format!("paused · {} updates held", app.held()), Tone::Warn),
        (Link::Live, false) => ("● live".to_owned(), Tone::Good),
        (Link::Connecting { attempt: 0 }, _) => ("connecting…".to_owned(), Tone::Warn),
        (Link::Connecting { attempt }, _) => (format!("reconnecting (attempt {})…", attempt + 1), Tone::Warn),
        (Link::Down { retry_at, .. }, _) => {
            // Rounded up: "retry in 0s" would read as "not at all".
            let secs = u64::try_from((retry_at - now).max(0)).unwrap_or(0).div_ceil(1000);
            (format!("✕ offline · retry in {}", span(secs)), Tone::Bad)
        }
    };
    let state_len = state.chars().count() + 1;
    let left = fit(&format!(" Edge Backup · {}", app.url), usize::from(width).saturating_sub(state_len));
    Line::from(vec![Span::styled(left, t.style(Tone::Heading)), t.span(state, tone), Span::raw(" ")])
}

fn tabs(current: Section, t: Theme) -> Line<'static> {
    let mut spans = Vec::new();
    // Seven tabs fit 80 columns: one space apart, the current one in reverse video.
    for (i, s) in Section::ALL.iter().enumerate() {
        let text = format!("{} {}", i + 1, s.title());
        let style = if *s == current {
            Style::default().add_modifier(Modifier::REVERSED | Modifier::BOLD)
        } else {
            t.style(Tone::Plain)
        };
        spans.push(Span::raw("  "));
        spans.push(Span::styled(text, style));
    }
    Line::from(spans)
}

fn footer(app: &App, t: Theme) -> Line<'static> {
    if let Some(text) = &app.editing {
        return Line::from(vec![
            t.span(" filter: ", Tone::Heading),
            Span::styled(format!("{text}▏"), Style::default().add_modifier(Modifier::REVERSED)),
            t.span("  Enter keeps · Esc clears", Tone::Dim),
        ]);
    }
    if !app.filter.is_empty() {
        return Line::from(vec![
            t.span(" q quit · ←→ section · ↑↓ scroll · / edit · Esc clears · ", Tone::Dim),
            t.span(format!("filter \"{}\"", app.filter), Tone::Warn),
        ]);
    }
    Line::from(t.span(" q quit · ←→ 1-7 section · ↑↓ PgUp/PgDn scroll · / filter · p pause · ? help", Tone::Dim))
}

fn body(app: &App, now: i64, area: Rect, t: Theme) -> (Vec<Line<'static>>, usize) {
    let mut lines = Vec::new();
    if let Link::Down { reason, attempt, .. } = &app.link {
        let text = format!("cannot reach the catcher (attempt {attempt}): {reason}");
        lines.push(Line::from(t.span(fit(&text, usize::from(area.width)), Tone::Bad)));
        if app.shown().status.is_some() {
            lines.push(Line::from(t.span("showing the last data received; reconnecting with backoff", Tone::Dim)));
        }
    }
    if app.help {
        // Wrapped to the screen: a narrow terminal still shows every word.
        let width = usize::from(area.width).max(20);
        lines.extend(HELP.iter().flat_map(|l| wrap(l, width)).map(Line::from));
        return (lines, 0);
    }
    if app.shown().status.is_none() {
        if !matches!(app.link, Link::Down { .. }) {
            lines.push(Line::from(t.span(format!("waiting for the first snapshot from {}", app.url), Tone::Dim)));
        }
        return (lines, 0);
    }
    let ctx = Ctx { now, width: area.width, filter: &app.filter, theme: t };
    let section = sections::build(app.shown(), app.section, &ctx);
    lines.extend(section.header);
    let visible = usize::from(area.height).saturating_sub(lines.len());
    let max_scroll = section.rows.len().saturating_sub(visible);
    let scroll = app.scroll[app.section.index()].min(max_scroll);
    lines.extend(section.rows.into_iter().skip(scroll).take(visible));
    (lines, max_scroll)
}

/// `text` in lines of at most `width` characters, broken at spaces (a longer word is cut);
/// continuation lines keep the first line's indent.
fn wrap(text: &str, width: usize) -> Vec<String> {
    if text.chars().count() <= width {
        // As written: the key table's columns are aligned with runs of spaces.
        return vec![text.to_owned()];
    }
    let indent: String = text.chars().take_while(|c| *c == ' ').collect();
    let mut out = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            out.push(std::mem::take(&mut line));
        }
        if line.is_empty() {
            line.push_str(&indent);
        } else {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push(line);
    out.into_iter().map(|l| fit(&l, width).trim_end().to_owned()).collect()
}

#[cfg(test)]
pub(crate) mod tests;
