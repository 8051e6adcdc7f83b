//! Gossip over a UDP socket that is bound before chitchat starts.
//!
//! chitchat's [`UdpTransport`](chitchat::transport::UdpTransport) binds the
//! listen address itself, inside `spawn_chitchat`, but the address this
//! node advertises is part of its identity and must be known before that.
//! With port 0 (every test, and agents that let the OS choose) the port is
//! only known after binding. [`bind_udp`] therefore binds first with
//! chitchat's own public [`UdpSocket`] (so the wire format and the error
//! handling stay chitchat's), reads the bound address, and wraps the socket
//! in a [`Transport`] that hands it to chitchat when chitchat opens it.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Mutex;

use chitchat::transport::{Socket, Transport, UdpSocket};

use super::MembershipError;

/// A gossip socket bound ahead of `spawn_chitchat`; it can be opened once.
pub struct BoundUdpTransport {
    /// The address asked for (possibly port 0); chitchat opens with the
    /// configured listen address, which may be this or the bound one.
    requested: SocketAddr,
    /// The address the socket is actually bound to.
    bound: SocketAddr,
    /// Taken by the first `open`.
    socket: Mutex<Option<UdpSocket>>,
}

impl std::fmt::Debug for BoundUdpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundUdpTransport")
            .field("requested", &self.requested)
            .field("bound", &self.bound)
            .finish_non_exhaustive()
    }
}

/// Binds the gossip socket on `addr` (port 0 lets the OS choose) and
/// returns it with the address it is bound to.
pub async fn bind_udp(
    addr: SocketAddr,
) -> Result<(BoundUdpTransport, SocketAddr), MembershipError> {
    let socket = UdpSocket::open(addr)
        .await
        .map_err(|error| MembershipError::Bind {
            addr,
            reason: format!("{error:#}"),
        })?;
    let bound = socket.local_addr().map_err(|error| MembershipError::Bind {
        addr,
        reason: format!("{error:#}"),
    })?;
    let transport = BoundUdpTransport {
        requested: addr,
        bound,
        socket: Mutex::new(Some(socket)),
    };
    Ok((transport, bound))
}

impl BoundUdpTransport {
    /// The address the socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.bound
    }

    fn take(&self, listen_addr: SocketAddr) -> anyhow::Result<Box<dyn Socket>> {
        if listen_addr != self.requested && listen_addr != self.bound {
            anyhow::bail!(
                "the gossip socket is bound to {} (asked for {}), not to the listen address {listen_addr}",
                self.bound,
                self.requested
            );
        }
        // A poisoned lock only means another open panicked mid-take; the
        // Option is still consistent, so keep going.
        let mut slot = self
            .socket
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        match slot.take() {
            Some(socket) => Ok(Box::new(socket)),
            None => anyhow::bail!(
                "the gossip socket bound to {} was already given to a gossip server",
                self.bound
            ),
        }
    }
}

// `Transport` is declared with `#[async_trait]`; this is the signature that
// macro expands to, written out so Volley needs no extra dependency.
impl Transport for BoundUdpTransport {
    fn open<'life0, 'async_trait>(
        &'life0 self,
        listen_addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = anyhow::Result<Box<dyn Socket>>> + Send + 'async_trait>>
    where
        'life0: 'async_trait,
        Self: 'async_trait,
    {
        let result = self.take(listen_addr);
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn binds_port_zero_and_opens_once() {
        let requested: SocketAddr = "127.0.0.1:0".parse().expect("addr");
        let (transport, bound) = bind_udp(requested).await.expect("bind");
        assert_ne!(bound.port(), 0);
        assert_eq!(transport.local_addr(), bound);

        let wrong: SocketAddr = "127.0.0.1:1".parse().expect("addr");
        let error = transport
            .open(wrong)
            .await
            .err()
            .expect("wrong listen address");
        assert!(
            error.to_string().contains("not to the listen address"),
            "{error:#}"
        );

        let socket = transport.open(requested).await.expect("first open");
        assert_eq!(socket.local_addr().expect("addr"), bound);
        let error = transport.open(bound).await.err().expect("second open");
        assert!(error.to_string().contains("already given"), "{error:#}");
    }

    #[tokio::test]
    async fn bind_errors_name_the_address() {
        let (_first, bound) = bind_udp("127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("bind");
        let error = bind_udp(bound).await.expect_err("port in use");
        assert!(matches!(error, MembershipError::Bind { addr, .. } if addr == bound));
        assert!(error.to_string().contains(&bound.to_string()), "{error}");
    }
}
