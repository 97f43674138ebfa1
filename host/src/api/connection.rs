//! One client connection: how many a client may hold, and a deadline on
//! every write, so a client that stops reading frees its slot.
//!
//! The other phases have their deadlines elsewhere: hyper closes a
//! connection whose next request's headers do not arrive in time (which is
//! also the keep-alive idle limit), and `routes` gives up on a body that
//! does not arrive in time.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv6Addr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, mpsc};
use tokio::time::Sleep;

/// Who a client is, for connection limits and rate limits: its IPv4
/// address, or the /64 of its IPv6 address (one subscriber's usual
/// allocation; counting single IPv6 addresses would let one client appear
/// as billions).
pub fn client_of(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

/// What an open connection holds: its place among all connections and
/// among its client's, and the shutdown's count of connections still open.
/// A WebSocket upgraded from the connection keeps it until it closes.
#[derive(Clone)]
pub(super) struct Held(
    #[allow(dead_code)] Arc<(OwnedSemaphorePermit, Option<Counted>, mpsc::Sender<()>)>,
);

impl Held {
    /// `counted` is `None` for a peer instance, which is not counted per
    /// client.
    pub(super) fn new(
        permit: OwnedSemaphorePermit,
        counted: Option<Counted>,
        open: mpsc::Sender<()>,
    ) -> Self {
        Held(Arc::new((permit, counted, open)))
    }
}

/// Open connections per client, each at most `per_client_max`.
pub(super) struct ClientConnections {
    open: Mutex<HashMap<IpAddr, usize>>,
    per_client_max: usize,
}

/// A counted connection; uncounted when dropped.
pub(super) struct Counted {
    clients: Arc<ClientConnections>,
    client: IpAddr,
}

impl ClientConnections {
    pub(super) fn new(per_client_max: usize) -> Arc<Self> {
        Arc::new(ClientConnections {
            open: Mutex::new(HashMap::new()),
            per_client_max,
        })
    }

    /// Counts a new connection of `client`, or `None` if it already holds
    /// its maximum.
    pub(super) fn open(self: &Arc<Self>, client: IpAddr) -> Option<Counted> {
        let mut open = self.open.lock().expect("connection counts poisoned");
        let count = open.entry(client).or_insert(0);
        if *count >= self.per_client_max {
            return None;
        }
        *count += 1;
        Some(Counted {
            clients: self.clone(),
            client,
        })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut open = self
            .clients
            .open
            .lock()
            .expect("connection counts poisoned");
        if let Some(count) = open.get_mut(&self.client) {
            *count -= 1;
            if *count == 0 {
                // The map holds only clients with open connections.
                open.remove(&self.client);
            }
        }
    }
}

/// A stream whose writes fail with `TimedOut` once one has waited
/// `write_timeout` for the peer to take bytes: a client that never reads
/// its responses cannot hold a connection forever.
pub(super) struct WriteDeadline<S> {
    stream: S,
    write_timeout: Duration,
    /// Armed while a write waits; cleared when one makes progress.
    deadline: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteDeadline<S> {
    pub(super) fn new(stream: S, write_timeout: Duration) -> Self {
        WriteDeadline {
            stream,
            write_timeout,
            deadline: None,
        }
    }

    /// Passes a write's progress through, failing it once it has waited
    /// past the deadline.
    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.deadline = None;
            return poll;
        }
        let timeout = self.write_timeout;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(deadline.as_mut().poll(cx));
        self.deadline = None;
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client did not read its response in time",
        )))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.stream).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.stream).poll_shutdown(cx);
        self.watch(cx, poll)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_counted_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_of(a), client_of(b));
        assert_ne!(client_of(a), client_of(other));
        let mapped: IpAddr = "::ffff:10.0.0.7".parse().unwrap();
        assert_eq!(client_of(mapped), "10.0.0.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn a_client_holds_at_most_its_share_and_gets_it_back() {
        let clients = ClientConnections::new(2);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let first = clients.open(ip).unwrap();
        let _second = clients.open(ip).unwrap();
        assert!(clients.open(ip).is_none(), "a third is refused");
        assert!(
            clients.open("10.0.0.2".parse().unwrap()).is_some(),
            "others are not"
        );
        drop(first);
        assert!(clients.open(ip).is_some(), "a closed one frees its place");
    }
}
