//! Accepting connections. At most `max_connections` are open at once: further ones wait in the
//! kernel's listen backlog, and hitting the cap is logged (once a minute). A connection that has
//! not finished its TLS handshake and sent the HTTP/2 preface within `handshake_timeout` is
//! closed, so sockets that never speak cannot hold descriptors. TLS and plaintext share the port
//! (a TLS ClientHello starts with 0x16, the HTTP/2 preface with "PRI"); plaintext is accepted
//! from loopback peers only, unless `allow_plaintext`. A connection the server closes for an
//! error (an HTTP/2 GOAWAY with an error code, such as h2's abuse limits) is logged with the
//! reason, which the HTTP/2 stack itself only traces at debug level.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::transport::server::Connected;

use crate::auth::ConnInfo;

/// "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n": what every HTTP/2 client sends first.
const PREFACE_LEN: usize = 24;
/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;
/// How often hitting the connection cap is logged, at most.
const CAP_LOG_EVERY: Duration = Duration::from_secs(60);

/// One accepted connection, holding its place under the cap until it closes.
pub struct Conn {
    io: Io,
    info: ConnInfo,
    sent: Frames,
    _permit: OwnedSemaphorePermit,
}

enum Io {
    Plain(TcpStream),
    /// The preface was read to bound the handshake; it is served again before the rest.
    Tls {
        stream: Box<TlsStream<TcpStream>>,
        preface: [u8; PREFACE_LEN],
        served: usize,
    },
}

/// What the listener enforces.
#[derive(Clone)]
pub struct Limits {
    pub max_connections: usize,
    pub handshake_timeout: Duration,
    /// TLS on this port (always, when configured).
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Plaintext from any peer, not only loopback ones.
    pub allow_plaintext: bool,
}

/// Accepts on `listener` until `stop`; yields connections that began HTTP/2 in time.
pub fn incoming(listener: TcpListener, limits: Limits, stop: CancellationToken) -> ReceiverStream<io::Result<Conn>> {
    let (tx, rx) = mpsc::channel(1024);
    tokio::spawn(accept_loop(listener, limits, tx, stop));
    ReceiverStream::new(rx)
}

async fn accept_loop(
    listener: TcpListener,
    limits: Limits,
    tx: mpsc::Sender<io::Result<Conn>>,
    stop: CancellationToken,
) {
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let mut last_logged: Option<Instant> = None;
    loop {
        let permit = match open.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if last_logged.is_none_or(|t| t.elapsed() >= CAP_LOG_EVERY) {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "connection limit reached; new connections wait until others close (max_connections)"
                    );
                    last_logged = Some(Instant::now());
                }
                tokio::select! {
                    p = open.clone().acquire_owned() => p.expect("the semaphore is never closed"),
                    () = stop.cancelled() => return,
                }
            }
        };
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = stop.cancelled() => return,
            () = tx.closed() => return,
        };
        let (io, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors and the like: pause instead of spinning.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Without it every small response waits for Nagle's delayed ACK (~40 ms).
        let _ = io.set_nodelay(true);
        let tx = tx.clone();
        let limits = limits.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(limits.handshake_timeout, handshake(io, peer, &limits)).await {
                Ok(Ok((io, info))) => {
                    let _ = tx.send(Ok(Conn { io, info, sent: Frames::default(), _permit: permit })).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "connection closed before it began HTTP/2"),
                Err(_) => tracing::debug!(%peer, "connection closed: no TLS handshake or HTTP/2 preface in time"),
            }
        });
    }
}

/// TLS (when the client starts it) or plaintext (when allowed), up to the HTTP/2 preface.
async fn handshake(io: TcpStream, peer: SocketAddr, limits: &Limits) -> io::Result<(Io, ConnInfo)> {
    let mut first = [0u8; 1];
    io.readable().await?;
    if io.peek(&mut first).await? == 0 {
        return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed by the client"));
    }
    if first[0] == TLS_HANDSHAKE {
        let Some(config) = &limits.tls else {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "TLS is not configured on this port"));
        };
        let mut stream = TlsAcceptor::from(config.clone()).accept(io).await?;
        let client_serial = match stream.get_ref().1.peer_certificates().and_then(|c| c.first()) {
            Some(cert) => Some(Arc::from(
                crate::auth::identity::serial_of(cert).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
            )),
            None => None,
        };
        let mut preface = [0u8; PREFACE_LEN];
        stream.read_exact(&mut preface).await?;
        let info = ConnInfo { remote: peer, tls: true, client_serial };
        return Ok((Io::Tls { stream: Box::new(stream), preface, served: 0 }, info));
    }
    if !limits.allow_plaintext && !peer.ip().is_loopback() {
        tracing::warn!(%peer, "refused a plaintext connection from off this host; connect with TLS");
        return Err(io::Error::new(io::ErrorKind::PermissionDenied, "plaintext is for loopback peers only"));
    }
    preface(&io).await?;
    Ok((Io::Plain(io), ConnInfo { remote: peer, tls: false, client_serial: None }))
}

/// Waits until the client's first `PREFACE_LEN` bytes have arrived (not consuming them).
async fn preface(io: &TcpStream) -> io::Result<()> {
    let mut buf = [0u8; PREFACE_LEN];
    loop {
        io.readable().await?;
        match io.peek(&mut buf).await? {
            0 => return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed by the client")),
            n if n >= PREFACE_LEN => return Ok(()),
            // Part of it: the rest is on its way (peek would return at once again).
            _ => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

impl Connected for Conn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        self.info.clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls { stream, preface, served } => {
                if *served < PREFACE_LEN {
                    let n = (PREFACE_LEN - *served).min(buf.remaining());
                    buf.put_slice(&preface[*served..*served + n]);
                    *served += n;
                    return Poll::Ready(Ok(()));
                }
                Pin::new(stream.as_mut()).poll_read(cx, buf)
            }
        }
    }
}

impl Conn {
    fn writer(&mut self) -> Pin<&mut (dyn AsyncWrite + Send + Unpin)> {
        match &mut self.io {
            Io::Plain(s) => Pin::new(s),
            Io::Tls { stream, .. } => Pin::new(stream.as_mut()),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let done = self.writer().poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = done {
            let peer = self.info.remote;
            if let Some((code, reason)) = self.sent.observe(&buf[..n]) {
                log_goaway(peer, code, &reason);
            }
        }
        done
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.writer().poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.writer().poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let done = self.writer().poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(mut n)) = done {
            let peer = self.info.remote;
            for b in bufs {
                let take = n.min(b.len());
                if let Some((code, reason)) = self.sent.observe(&b[..take]) {
                    log_goaway(peer, code, &reason);
                }
                n -= take;
                if n == 0 {
                    break;
                }
            }
        }
        done
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls { stream, .. } => stream.is_write_vectored(),
        }
    }
}

/// Follows the HTTP/2 frames the server writes, skipping payloads, to see its GOAWAYs.
#[derive(Default)]
struct Frames {
    header: [u8; FRAME_HEADER],
    have: usize,
    /// Payload bytes of the current frame still to pass.
    left: usize,
    /// The current frame is a GOAWAY: its payload so far (capped).
    goaway: Option<Vec<u8>>,
}

const FRAME_HEADER: usize = 9;
const GOAWAY: u8 = 0x7;
/// Enough of a GOAWAY's payload for its reason (last stream id, code, debug text).
const GOAWAY_KEPT: usize = 8 + 120;

impl Frames {
    /// Takes the next bytes written; answers the code and reason of a GOAWAY with an error
    /// that ended in them.
    fn observe(&mut self, mut data: &[u8]) -> Option<(u32, String)> {
        let mut found = None;
        while !data.is_empty() {
            if self.have < FRAME_HEADER {
                let take = (FRAME_HEADER - self.have).min(data.len());
                self.header[self.have..self.have + take].copy_from_slice(&data[..take]);
                self.have += take;
                data = &data[take..];
                if self.have == FRAME_HEADER {
                    let h = self.header;
                    self.left = usize::from(h[0]) << 16 | usize::from(h[1]) << 8 | usize::from(h[2]);
                    self.goaway = (h[3] == GOAWAY).then(Vec::new);
                    found = self.end_of_frame().or(found);
                }
                continue;
            }
            let take = self.left.min(data.len());
            if let Some(g) = &mut self.goaway {
                let room = GOAWAY_KEPT.saturating_sub(g.len()).min(take);
                g.extend_from_slice(&data[..room]);
            }
            self.left -= take;
            data = &data[take..];
            found = self.end_of_frame().or(found);
        }
        found
    }

    fn end_of_frame(&mut self) -> Option<(u32, String)> {
        if self.left > 0 {
            return None;
        }
        self.have = 0;
        let g = self.goaway.take()?;
        let code = g.get(4..8).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))?;
        // NO_ERROR is a graceful close.
        (code != 0).then(|| (code, String::from_utf8_lossy(g.get(8..).unwrap_or_default()).into_owned()))
    }
}

fn log_goaway(peer: SocketAddr, code: u32, reason: &str) {
    tracing::warn!(%peer, code = goaway_code(code), %reason, "closing an HTTP/2 connection on an error (GOAWAY)");
}

fn goaway_code(code: u32) -> &'static str {
    match code {
        0x1 => "PROTOCOL_ERROR",
        0x2 => "INTERNAL_ERROR",
        0x3 => "FLOW_CONTROL_ERROR",
        0x4 => "SETTINGS_TIMEOUT",
        0x6 => "FRAME_SIZE_ERROR",
        0x9 => "COMPRESSION_ERROR",
        0xb => "ENHANCE_YOUR_CALM",
        _ => "OTHER",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
        let n = payload.len();
        let mut f = vec![(n >> 16) as u8, (n >> 8) as u8, n as u8, kind, 0, 0, 0, 0, 0];
        f.extend_from_slice(payload);
        f
    }

    /// Frames split anywhere across writes are followed; a GOAWAY's code and reason are read.
    #[test]
    fn goaways_are_found_across_writes() {
        let mut goaway = vec![0, 0, 0, 7, 0, 0, 0, 0xb];
        goaway.extend_from_slice(b"too_many_data_frames");
        let mut stream = frame(0x4, &[0; 12]);
        stream.extend(frame(0x0, &[1; 300]));
        stream.extend(frame(GOAWAY, &goaway));
        let want = Some((0xb, "too_many_data_frames".to_owned()));
        for cut in [1, 5, 9, 10, 321, stream.len() - 3, stream.len()] {
            let mut f = Frames::default();
            let first = f.observe(&stream[..cut]);
            let second = f.observe(&stream[cut..]);
            assert_eq!(first.or(second), want, "cut at {cut}");
            assert_eq!((f.have, f.left, f.goaway.is_none()), (0, 0, true), "cut at {cut}");
        }
        // A graceful GOAWAY (NO_ERROR) is not reported.
        assert_eq!(Frames::default().observe(&frame(GOAWAY, &[0, 0, 0, 1, 0, 0, 0, 0])), None);
    }
}
