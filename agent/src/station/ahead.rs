//! A bounded in-memory lead for a tool that starts reading late.
//!
//! restic reads nothing from its stdin until it has opened the repository (key derivation,
//! 0.7 s on a small machine). Written straight into the pipe, the archive would stall on the
//! pipe's 64 KiB for that long while the other core idles. `Ahead` takes the archive in 1 MiB
//! chunks and a thread writes them into the pipe, so packaging runs up to `LEAD` bytes ahead.
//! The pipe is closed (the tool sees the end) only after the `Ahead` was dropped.

use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

const CHUNK: usize = 1 << 20;
/// Chunks queued at most: 32 MiB of lead, about what one core packages while restic starts.
const CHUNKS: usize = 32;

pub struct Ahead {
    chunk: Vec<u8>,
    tx: Option<SyncSender<Vec<u8>>>,
    writer: Option<JoinHandle<io::Result<()>>>,
}

impl Ahead {
    pub fn new(out: impl Write + Send + 'static) -> io::Result<Self> {
        let (tx, rx) = sync_channel(CHUNKS);
        let writer = std::thread::Builder::new().name("feed-ahead".into()).spawn(move || drain(rx, out))?;
        Ok(Self { chunk: Vec::with_capacity(CHUNK), tx: Some(tx), writer: Some(writer) })
    }

    fn send(&mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
        match &self.tx {
            Some(tx) if tx.send(chunk).is_ok() => Ok(()),
            // The writer stopped: the tool no longer reads. Say why.
            _ => Err(self.stopped()),
        }
    }

    fn stopped(&mut self) -> io::Error {
        self.tx = None;
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(Err(e))) => e,
            Some(Err(_)) => io::Error::other("the feed's writer thread panicked"),
            _ => io::Error::new(io::ErrorKind::BrokenPipe, "the tool stopped reading the archive"),
        }
    }
}

fn drain(rx: Receiver<Vec<u8>>, mut out: impl Write) -> io::Result<()> {
    for chunk in rx {
        out.write_all(&chunk)?;
    }
    out.flush()
}

impl Write for Ahead {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(CHUNK - self.chunk.len());
        self.chunk.extend_from_slice(&buf[..n]);
        if self.chunk.len() == CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    /// Hands what is buffered to the writer thread (it reaches the pipe shortly after).
    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

impl Drop for Ahead {
    /// What is left goes to the writer thread, which closes the pipe once it has written
    /// everything; the tool's own exit says when that was. (A failed build kills the tool before
    /// dropping its feed, so a truncated archive is never seen to end.)
    fn drop(&mut self) {
        let _ = self.send();
        self.tx = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn everything_written_arrives_in_order_and_the_end_comes_at_drop() {
        let (mut reader, writer) = std::io::pipe().unwrap();
        let data: Vec<u8> = (0..5 * CHUNK + 12_345).map(|i| (i % 251) as u8).collect();
        let reading = std::thread::spawn(move || {
            let mut got = Vec::new();
            io::Read::read_to_end(&mut reader, &mut got).map(|_| got)
        });
        let mut ahead = Ahead::new(writer).unwrap();
        for piece in data.chunks(70_000) {
            ahead.write_all(piece).unwrap();
        }
        ahead.flush().unwrap();
        drop(ahead);
        assert_eq!(reading.join().unwrap().unwrap(), data);
    }

    #[test]
    fn a_reader_that_went_away_is_reported() {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut ahead = Ahead::new(writer).unwrap();
        let err = (0..CHUNKS + 4).try_for_each(|_| ahead.write_all(&vec![0u8; CHUNK])).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::BrokenPipe, "{err}");
    }
}
