//! The answering side of the QUIC transport: accept connections (the TLS layer has verified the
//! client certificate against the trust bundle), take the peer's node id from its certificate,
//! and answer each bidirectional stream as one request. A request whose requester goes away
//! (stream stopped, connection lost) stops being worked on.

use std::net::SocketAddr;
use std::sync::Arc;

use quinn::{Connection, Endpoint, Incoming, RecvStream, SendStream, VarInt};

use super::errors::{self, CLOSE_NO_NODE_ID, STREAM_TOO_LARGE};
use super::stream::{ReadFailure, read_frame, write_frame};
use super::tls;
use crate::fleet::transport::PeerId;
use crate::fleet::transport::clock::now_ns;
use crate::fleet::transport::dispatch::Dispatcher;
use crate::fleet::transport::frame::FrameError;

/// Accepts connections until the endpoint is closed.
pub(crate) async fn accept_loop(endpoint: Endpoint, dispatcher: Arc<Dispatcher>) {
    while let Some(incoming) = endpoint.accept().await {
        tokio::spawn(serve_connection(incoming, Arc::clone(&dispatcher)));
    }
}

async fn serve_connection(incoming: Incoming, dispatcher: Arc<Dispatcher>) {
    let remote = incoming.remote_address();
    let conn = match incoming.await {
        Ok(conn) => conn,
        Err(err) => {
            let err = errors::connection(remote, &err, false);
            tracing::warn!(peer = %remote, "refused incoming fleet connection: {err}");
            return;
        }
    };
    let Some(from) = tls::peer_id(&conn) else {
        tracing::warn!(peer = %remote, "closing fleet connection: client certificate has no node id (CN)");
        conn.close(
            VarInt::from_u32(CLOSE_NO_NODE_ID),
            b"client certificate has no node id (CN)",
        );
        return;
    };
    tracing::debug!(peer = %remote, node = %from, "fleet connection accepted");
    serve_streams(conn, remote, from, dispatcher).await;
}

async fn serve_streams(
    conn: Connection,
    remote: SocketAddr,
    from: PeerId,
    dispatcher: Arc<Dispatcher>,
) {
    loop {
        match conn.accept_bi().await {
            Ok((send, recv)) => {
                tokio::spawn(serve_stream(
                    send,
                    recv,
                    from.clone(),
                    Arc::clone(&dispatcher),
                ));
            }
            Err(err) => {
                let err = errors::connection(remote, &err, true);
                tracing::debug!(peer = %remote, node = %from, "fleet connection ended: {err}");
                return;
            }
        }
    }
}

async fn serve_stream(
    mut send: SendStream,
    mut recv: RecvStream,
    from: PeerId,
    dispatcher: Arc<Dispatcher>,
) {
    let reply = match read_frame(&mut recv, dispatcher.frame_limit()).await {
        Ok(payload) => {
            let received = now_ns();
            // Resolves only if the requester stops the stream or the connection is lost: the
            // request was abandoned, so its handler need not run to completion.
            let abandoned = send.stopped();
            tokio::select! {
                reply = dispatcher.answer(from.clone(), payload, received) => reply,
                _ = abandoned => {
                    tracing::debug!(node = %from, "requester abandoned a request; dropping it");
                    return;
                }
            }
        }
        Err(ReadFailure::Frame(err)) => {
            if matches!(err, FrameError::TooLarge { .. }) {
                // Tell the requester to stop sending the oversized body; the reply explains why.
                let _ = recv.stop(VarInt::from_u32(STREAM_TOO_LARGE));
            }
            dispatcher.refuse_frame(&from, &err)
        }
        Err(ReadFailure::Early { got, expected }) => {
            // Usually a requester that timed out and reset its stream.
            tracing::debug!(node = %from, "request stream ended after {got} of {expected} bytes");
            return;
        }
        Err(ReadFailure::Stream(err)) => {
            tracing::debug!(node = %from, "request stream failed: {err}");
            return;
        }
    };
    match write_frame(&mut send, reply).await {
        Ok(()) => {
            let _ = send.finish();
        }
        Err(err) => tracing::debug!(node = %from, "could not send a reply: {err}"),
    }
}
