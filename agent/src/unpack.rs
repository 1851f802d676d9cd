//! Unpacking a stored copy on two threads: one reads the copy, hashes it and decompresses it,
//! the caller parses the tar stream, writes and hashes the files. (`zstd -d | tar -x` gets its
//! speed the same way: two processes.)

use std::io::{self, Read};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use crate::archive::HashingReader;

/// Decompressed chunks in flight between the threads (4 × 1 MiB).
const AHEAD: usize = 4;
const CHUNK: usize = 1 << 20;

/// The decompressed stream of `archive`, produced on a thread of its own; joining the handle
/// gives the sha256 of every byte of `archive` (read to its end even when the reader stops
/// early, so the copy is always checked whole).
pub fn ahead(archive: impl Read + Send + 'static) -> (ChunkReader, JoinHandle<io::Result<String>>) {
    let (tx, rx) = sync_channel(AHEAD);
    let worker = std::thread::spawn(move || decode(archive, tx));
    (ChunkReader { rx, chunk: Vec::new(), at: 0 }, worker)
}

fn decode(archive: impl Read, tx: SyncSender<io::Result<Vec<u8>>>) -> io::Result<String> {
    let mut hashing = HashingReader::new(archive);
    {
        let mut decoder = zstd::Decoder::new(&mut hashing)?;
        loop {
            let mut buf = vec![0; CHUNK];
            match decoder.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    buf.truncate(n);
                    if tx.send(Ok(buf)).is_err() {
                        break; // the reader has what it wanted
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(io::Error::new(e.kind(), format!("the archive is damaged: {e}"))));
                    break;
                }
            }
        }
    }
    hashing.finish()
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
    fn the_stream_and_the_hash_are_those_of_the_whole_archive() {
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let packed = zstd::encode_all(data.as_slice(), 3).unwrap();
        let expected = crate::archive::sha256_of(packed.as_slice()).unwrap().0;
        let (mut r, worker) = ahead(std::io::Cursor::new(packed.clone()));
        let mut out = Vec::new();
        r.read_to_end(&mut out).unwrap();
        assert_eq!(out, data);
        assert_eq!(worker.join().unwrap().unwrap(), expected);
        // A reader that stops early still gets the whole archive hashed.
        let (mut r, worker) = ahead(std::io::Cursor::new(packed));
        let mut first = [0u8; 10];
        r.read_exact(&mut first).unwrap();
        drop(r);
        assert_eq!(worker.join().unwrap().unwrap(), expected);
        // Damage is an error of the stream.
        let mut bad = zstd::encode_all(data.as_slice(), 3).unwrap();
        let mid = bad.len() / 2;
        bad[mid] ^= 0xff;
        let (mut r, _) = ahead(std::io::Cursor::new(bad));
        assert!(r.read_to_end(&mut Vec::new()).is_err());
    }
}
