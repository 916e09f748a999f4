//! Small files kept in the metadata record rather than the blob store: a publish reads a body
//! that ends within the inline limit into memory, and the store commits bytes and record in
//! one write (SQLite: one transaction, whose WAL sync concurrent publishes share; DynamoDB: one
//! item instead of an S3 PUT and an item). A longer body goes on to the blob store whole: the
//! chunks read so far, then the rest.

use super::Registry;
use crate::store::{BlobBody, ByteStream};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use std::ops::Range;

/// Files up to this many bytes are kept in their record unless configured otherwise (and
/// where the metadata store can).
pub const DEFAULT_INLINE_FILE_MAX: u64 = 8 << 10;

/// A body, read as far as the inline limit allows.
pub(super) enum Taken {
    /// It ended within the limit: all of it.
    Whole(Bytes),
    /// It is longer: the same body, the chunks already read first.
    Longer(ByteStream),
}

/// Read `body` into memory if it ends within `max` bytes.
pub(super) async fn take_whole(mut body: ByteStream, max: u64) -> Result<Taken, std::io::Error> {
    let mut read: Vec<Bytes> = Vec::new();
    let mut size = 0u64;
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        size += chunk.len() as u64;
        read.push(chunk);
        if size > max {
            let rest = futures::stream::iter(read.into_iter().map(Ok)).chain(body);
            return Ok(Taken::Longer(Box::pin(rest)));
        }
    }
    Ok(Taken::Whole(match read.len() {
        1 => read.pop().unwrap_or_default(),
        _ => {
            let mut whole = BytesMut::with_capacity(size as usize);
            read.iter().for_each(|c| whole.extend_from_slice(c));
            whole.freeze()
        }
    }))
}

/// The bytes of an inline file as a blob body, or the byte `range` of them.
pub(super) fn inline_body(content: &Bytes, range: Option<Range<u64>>) -> BlobBody {
    let total_size = content.len() as u64;
    let range = range.unwrap_or(0..total_size);
    let part = content.slice(range.start as usize..range.end.min(total_size) as usize);
    BlobBody {
        total_size,
        range,
        stream: Box::pin(futures::stream::once(async move { Ok(part) })),
    }
}

impl Registry {
    /// The largest file a publish keeps in its record: the configured limit, where the
    /// metadata store can keep bytes (0: none).
    pub(super) fn inline_file_max(&self) -> u64 {
        self.limits.inline_file_max.min(self.meta.inline_file_max())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(chunks: &[&'static [u8]]) -> ByteStream {
        let chunks: Vec<_> = chunks.iter().map(|c| Ok(Bytes::from_static(c))).collect();
        Box::pin(futures::stream::iter(chunks))
    }

    async fn collect(stream: ByteStream) -> Vec<u8> {
        let chunks: Vec<Bytes> = stream.map(|c| c.unwrap()).collect().await;
        chunks.concat()
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_read_whole_and_a_longer_one_passes_on_intact() {
        match take_whole(body(&[b"abc", b"de"]), 5).await.unwrap() {
            Taken::Whole(b) => assert_eq!(&b[..], b"abcde"),
            Taken::Longer(_) => panic!("5 bytes fit a limit of 5"),
        }
        match take_whole(body(&[b"abc", b"def", b"gh"]), 5).await.unwrap() {
            Taken::Longer(rest) => assert_eq!(collect(rest).await, b"abcdefgh"),
            Taken::Whole(_) => panic!("8 bytes do not fit a limit of 5"),
        }
        match take_whole(body(&[]), 5).await.unwrap() {
            Taken::Whole(b) => assert!(b.is_empty()),
            Taken::Longer(_) => panic!("an empty body fits"),
        }
    }

    #[tokio::test]
    async fn a_body_that_fails_is_an_error() {
        let failing: ByteStream = Box::pin(futures::stream::iter(vec![
            Ok(Bytes::from_static(b"ab")),
            Err(std::io::Error::other("reset")),
        ]));
        assert!(take_whole(failing, 100).await.is_err());
    }

    #[tokio::test]
    async fn inline_bodies_answer_ranges() {
        let content = Bytes::from_static(b"0123456789");
        let whole = inline_body(&content, None);
        assert_eq!((whole.total_size, whole.range.clone()), (10, 0..10));
        assert_eq!(collect(whole.stream).await, b"0123456789");
        let part = inline_body(&content, Some(2..5));
        assert_eq!((part.total_size, part.range.clone()), (10, 2..5));
        assert_eq!(collect(part.stream).await, b"234");
    }
}
