//! Reading the client's request: the whole body of a model request (kept so that Pingora can
//! still forward it), `Content-Length` and the bearer token.

use bytes::{Bytes, BytesMut};
use http::header::{AUTHORIZATION, CONTENT_LENGTH};
use pingora::http::RequestHeader;
use pingora::proxy::Session;

/// Capacity of Pingora's (HTTP/1) request retry buffer, which is also the largest chunk one
/// body read returns. See [`read_model_body`].
const RETRY_BUFFER_CAPACITY: usize = 64 * 1024;

/// Why a model request body was not accepted.
pub(super) enum BodyRejected {
    /// Larger than `max_body_bytes`.
    TooLarge,
    /// Could not be kept for forwarding (chunked and larger than Pingora's retry buffer).
    NotReplayable,
}

/// Reads the whole request body of a model request (at most `max` bytes).
///
/// Pingora forwards a request body only from what it reads itself, plus its retry buffer
/// (capacity 64 KiB, the same as its largest single body read) when the body was already
/// read. To be able to forward a body consumed here, the retry buffer is enabled as soon as at
/// most 64 KiB of a `Content-Length` body remain: the buffer then holds a non-empty,
/// untruncated tail, Pingora passes it to `request_body_filter` with `end_of_stream`, and that
/// filter substitutes the complete body. Chunked bodies have no known length, so they are
/// buffered from the start and therefore limited to 64 KiB.
pub(super) async fn read_model_body(
    session: &mut Session,
    max: u64,
) -> pingora::Result<Result<Bytes, BodyRejected>> {
    let content_length =
        content_length(session.req_header()).map(|len| usize::try_from(len).unwrap_or(usize::MAX));
    if content_length.is_none() {
        session.as_downstream_mut().enable_retry_buffering();
    }
    let mut buf = BytesMut::new();
    while !session.is_body_done() {
        if content_length.is_some_and(|len| len.saturating_sub(buf.len()) <= RETRY_BUFFER_CAPACITY)
        {
            session.as_downstream_mut().enable_retry_buffering();
        }
        let Some(chunk) = session.read_request_body().await? else {
            break;
        };
        buf.extend_from_slice(&chunk);
        if buf.len() as u64 > max {
            return Ok(Err(BodyRejected::TooLarge));
        }
    }
    // Safety net: without a replayable tail Pingora would send no body at all.
    if !buf.is_empty() && session.get_retry_buffer().is_none() {
        return Ok(Err(BodyRejected::NotReplayable));
    }
    Ok(Ok(buf.freeze()))
}

/// The request's `Content-Length`, if present and a number.
pub(super) fn content_length(req: &RequestHeader) -> Option<u64> {
    req.headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

pub(super) fn bearer_token(req: &RequestHeader) -> Option<&str> {
    crate::auth::bearer_token(req.headers.get(AUTHORIZATION)?.to_str().ok()?)
}
