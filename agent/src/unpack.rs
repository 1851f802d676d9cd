//! Unpacking a stored copy on two threads: one reads the copy and decompresses it, the caller
//! parses the tar stream, writes and hashes the files. (`zstd -d | tar -x` gets its speed the
//! same way: two processes.) The copy is not hashed: every file taken from it is checked
//! against the catalog's sha256, and the whole copy is decoded to its end, so every frame's
//! checksum says whether any part of it is damaged.

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

/// Decompressed chunks in flight between the threads (4 × 1 MiB).
const AHEAD: usize = 4;
const CHUNK: usize = 1 << 20;

/// The decompressed stream of `archive`, produced on a thread of its own; joining the handle
/// says whether the whole archive decoded intact (decoded to its end even when the reader
/// stops early).
pub fn ahead(archive: impl Read + Send + 'static) -> (ChunkReader, JoinHandle<io::Result<()>>) {
    let (tx, rx) = sync_channel(AHEAD);
    let worker = std::thread::spawn(move || decode(archive, tx));
    (ChunkReader { rx, chunk: Vec::new(), at: 0 }, worker)
}

fn decode(archive: impl Read, tx: SyncSender<io::Result<Vec<u8>>>) -> io::Result<()> {
    let mut decoder = zstd::Decoder::new(archive)?;
    loop {
        let mut buf = vec![0; CHUNK];
        match decoder.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => {
                buf.truncate(n);
                if tx.send(Ok(buf)).is_err() {
                    // The reader has what it wanted; the rest is still checked.
                    return io::copy(&mut decoder, &mut io::sink()).map(|_| ()).map_err(damaged);
                }
            }
            Err(e) => {
                let _ = tx.send(Err(damaged(io::Error::new(e.kind(), e.to_string()))));
                return Err(damaged(e));
            }
        }
    }
}

fn damaged(e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("the archive is damaged: {e}"))
}

/// Reads what the decoding thread sends.
pub struct ChunkReader {
    rx: Receiver<io::Result<Vec<u8>>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.recv() {
                Ok(Ok(chunk)) => {
                    self.chunk = chunk;
                    self.at = 0;
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => return Ok(0), // the thread is done: end of stream
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_the_whole_archive_decoded_and_damage_is_an_error() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let packed = zstd::encode_all(data.as_slice(), 3).unwrap();
        let (mut r, worker) = ahead(std::io::Cursor::new(packed.clone()));
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        worker.join().unwrap().unwrap();
        // A reader that stops early still gets the rest checked.
        let (mut r, worker) = ahead(std::io::Cursor::new(packed.clone()));
        let mut first = [0u8; 10];
        r.read_exact(&mut first).unwrap();
        drop(r);
        worker.join().unwrap().unwrap();
        let mut tail_damaged = packed;
        let n = tail_damaged.len();
        tail_damaged[n - 2] ^= 0xff; // the frame checksum
        let (mut r, worker) = ahead(std::io::Cursor::new(tail_damaged));
        r.read_exact(&mut first).unwrap();
        drop(r);
        assert!(worker.join().unwrap().is_err(), "damage after what was read is found");
        // Damage is an error of the stream.
        let mut bad = zstd::encode_all(data.as_slice(), 3).unwrap();
        let mid = bad.len() / 2;
        bad[mid] ^= 0xff;
        let (mut r, _) = ahead(std::io::Cursor::new(bad));
        assert!(r.read_to_end(&mut Vec::new()).is_err());
    }
}
