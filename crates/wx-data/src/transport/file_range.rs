//! Reading a byte range of a local file straight into the buffer that is returned.
//!
//! object_store's local reads zero-fill each buffer before reading into it. For the chunks wx
//! reads (tens of MB at 0.25°) that is a needless pass over fresh memory, and the page faults
//! that come with it, per chunk (docs/data.md §4.3). Here `read_to_end` writes into the
//! buffer's spare capacity: nothing is zero-filled or copied.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;

use bytes::Bytes;

/// Reads `range` of `file` into one new buffer: at most the range's bytes, fewer when the file
/// ends inside the range (the caller compares the length with what it expected).
pub(super) fn read_file_range(
    file: &File,
    path: &Path,
    range: Range<u64>,
) -> object_store::Result<Bytes> {
    let io = |source: std::io::Error| object_store::Error::Generic {
        store: "LocalFileSystem",
        source: format!("reading {}: {source}", path.display()).into(),
    };
    let len = range.end.saturating_sub(range.start);
    let mut file = file;
    file.seek(SeekFrom::Start(range.start)).map_err(io)?;
    let mut buffer = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.take(len).read_to_end(&mut buffer).map_err(io)?;
    Ok(Bytes::from(buffer))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_local_file_range_is_read_exactly_or_short_at_the_end_of_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("chunk");
        let data: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
        std::fs::write(&path, &data).unwrap();
        let file = File::open(&path).unwrap();
        let whole = read_file_range(&file, &path, 0..100_000).unwrap();
        assert_eq!(&whole[..], &data[..]);
        let head = read_file_range(&file, &path, 0..60_000).unwrap();
        assert_eq!(&head[..], &data[..60_000]);
        // a file shorter than the range reads short (the caller reports it truncated)
        let short = read_file_range(&file, &path, 50_000..150_000).unwrap();
        assert_eq!(&short[..], &data[50_000..]);
        // ranges of one open file, in any order
        let middle = read_file_range(&file, &path, 1_000..1_010).unwrap();
        assert_eq!(&middle[..], &data[1_000..1_010]);
    }
}
