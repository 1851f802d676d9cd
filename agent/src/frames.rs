//! Seekable packages: the tar stream is cut into independent zstd frames of `FRAME` bytes,
//! compressed on worker threads and written in order. Every frame boundary is a place where
//! decoding can start, so one file is read from the frame its tar entry begins in (its
//! `PackRange`, recorded in the catalog); the whole is still one valid zstd stream
//! (`zstd -d | tar -x` reads it as before).
//!
//! Frames of 512 KiB keep a small file's read under about 1 MiB of the archive, cost a few
//! percent of compression (each frame starts without a window), and give the workers
//! independent jobs, as pzstd does.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Decompressed bytes per frame.
pub const FRAME: usize = 512 * 1024;

type Job = (u64, Vec<u8>);
type Done = (u64, io::Result<Vec<u8>>);

/// Where one span of the decompressed stream lies in the compressed archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Located {
    /// Compressed offset of the frame the span begins in.
    pub offset: u64,
    /// Compressed bytes from `offset` to the end of the frame the span ends in.
    pub length: u64,
    /// Decompressed bytes from that frame's start to the span.
    pub skip: u64,
}

/// The compressed offset of every frame's start, and the archive's end.
#[derive(Debug, Clone, Default)]
pub struct FrameIndex(Vec<u64>);

impl FrameIndex {
    /// Where the decompressed span `[start, end)` is (`end > start`).
    pub fn locate(&self, start: u64, end: u64) -> Located {
        let first = (start / FRAME as u64) as usize;
        let last = ((end.max(start + 1) - 1) / FRAME as u64) as usize;
        let at = |i: usize| self.0.get(i).or(self.0.last()).copied().unwrap_or(0);
        let offset = at(first);
        Located { offset, length: at(last + 1) - offset, skip: start - first as u64 * FRAME as u64 }
    }
}

/// Compresses what is written to it into frames, in order, into `out`.
pub struct FrameWriter<W: Write> {
    out: W,
    buf: Vec<u8>,
    /// Decompressed bytes taken so far.
    position: u64,
    /// Compressed bytes written so far, and where each frame began.
    written: u64,
    index: Vec<u64>,
    submitted: u64,
    next: u64,
    /// Frames compressed out of order, waiting for their turn.
    ready: BTreeMap<u64, Vec<u8>>,
    jobs: Option<SyncSender<Job>>,
    done: Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
    in_flight: u64,
}

impl<W: Write> FrameWriter<W> {
    pub fn new(out: W, level: i32, workers: usize) -> io::Result<Self> {
        let workers = workers.max(1);
        let (jobs, queue) = sync_channel::<Job>(workers);
        let queue = Arc::new(Mutex::new(queue));
        let (tx, done) = sync_channel::<Done>(workers * 2 + 2);
        let mut handles = Vec::with_capacity(workers);
        for _ in 0..workers {
            let mut compressor = zstd::bulk::Compressor::new(level)?;
            // A frame checksum makes any corruption of a stored copy fail decoding there.
            compressor.include_checksum(true)?;
            let (queue, tx) = (queue.clone(), tx.clone());
            handles.push(std::thread::spawn(move || {
                loop {
                    let job = queue.lock().map_err(|_| ()).and_then(|q| q.recv().map_err(|_| ()));
                    let Ok((seq, data)) = job else { return };
                    if tx.send((seq, compressor.compress(&data))).is_err() {
                        return;
                    }
                }
            }));
        }
        Ok(Self {
            out,
            buf: Vec::with_capacity(FRAME),
            position: 0,
            written: 0,
            index: Vec::new(),
            submitted: 0,
            next: 0,
            ready: BTreeMap::new(),
            jobs: Some(jobs),
            done,
            workers: handles,
            in_flight: (workers * 2) as u64,
        })
    }

    /// Decompressed bytes written so far: where the next byte will be.
    pub fn position(&self) -> u64 {
        self.position
    }

    fn submit(&mut self) -> io::Result<()> {
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(FRAME));
        // Bounded: at most `in_flight` frames compressed ahead of the one written next.
        while self.submitted - self.next >= self.in_flight {
            self.receive()?;
        }
        let jobs = self.jobs.as_ref().ok_or_else(|| io::Error::other("frames already finished"))?;
        jobs.send((self.submitted, data)).map_err(|_| io::Error::other("a compression worker stopped"))?;
        self.submitted += 1;
        Ok(())
    }

    /// Waits for one compressed frame and writes whatever is next in order.
    fn receive(&mut self) -> io::Result<()> {
        let (seq, frame) = self.done.recv().map_err(|_| io::Error::other("a compression worker stopped"))?;
        self.ready.insert(seq, frame?);
        while let Some(frame) = self.ready.remove(&self.next) {
            self.index.push(self.written);
            self.out.write_all(&frame)?;
            self.written += frame.len() as u64;
            self.next += 1;
        }
        Ok(())
    }

    /// Compresses what is left, waits for every frame, and returns the output and the index.
    pub fn finish(mut self) -> io::Result<(W, FrameIndex)> {
        if !self.buf.is_empty() {
            self.submit()?;
        }
        self.jobs = None;
        while self.next < self.submitted {
            self.receive()?;
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        self.index.push(self.written);
        self.out.flush()?;
        Ok((self.out, FrameIndex(self.index)))
    }
}

impl<W: Write> Write for FrameWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(FRAME - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        self.position += n as u64;
        if self.buf.len() == FRAME {
            self.submit()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    #[test]
    fn frames_decode_as_one_stream_and_from_any_frame_start() {
        let data: Vec<u8> = (0..(FRAME * 5 + 1234) as u32).map(|i| (i % 251) as u8 ^ (i >> 13) as u8).collect();
        let mut w = FrameWriter::new(Vec::new(), 3, 3).unwrap();
        for chunk in data.chunks(70_001) {
            w.write_all(chunk).unwrap();
        }
        assert_eq!(w.position(), data.len() as u64);
        let (packed, index) = w.finish().unwrap();
        assert_eq!(index.0.len(), 7, "six frames and the end");
        assert_eq!(*index.0.last().unwrap(), packed.len() as u64);
        // The whole, as one zstd stream.
        assert_eq!(zstd::decode_all(packed.as_slice()).unwrap(), data);
        // A span in the middle, from its frame only.
        let (start, end) = (FRAME as u64 * 2 + 100, FRAME as u64 * 3 + 50);
        let at = index.locate(start, end);
        assert_eq!(at.skip, 100);
        let slice = &packed[at.offset as usize..(at.offset + at.length) as usize];
        let mut out = Vec::new();
        zstd::Decoder::new(slice).unwrap().read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), FRAME * 2);
        assert_eq!(&out[100..(end - start + 100) as usize], &data[start as usize..end as usize]);
        // A span in the last, short frame.
        let tail = index.locate(data.len() as u64 - 10, data.len() as u64);
        assert_eq!(tail.offset + tail.length, packed.len() as u64);
    }

    #[test]
    fn nothing_written_is_an_empty_archive() {
        let (packed, index) = FrameWriter::new(Vec::new(), 3, 2).unwrap().finish().unwrap();
        assert!(packed.is_empty());
        assert_eq!(index.0, [0]);
    }
}
