//! Read-only memory mapping of a weights file, so packed weights can be used
//! in place (zero copy) and shared through the page cache by every process
//! that opens the same file.
//!
//! This is the one place the workspace calls `memmap2::Mmap::map`, which is
//! `unsafe` because the operating system cannot stop another process from
//! changing the file while it is mapped.

use std::fs::File;
use std::io;

pub use memmap2::Mmap;

/// Maps the whole of `file` read-only.
///
/// Contract: the caller treats the mapping as immutable data that may be
/// validated once and then trusted. That holds as long as nobody truncates or
/// rewrites the file while it is mapped — the documented hazard of using a
/// weights file in place: truncation can raise `SIGBUS` on access, rewriting
/// changes the weights under a running model. Replace weights files by writing
/// a new file and renaming it over the old one (what `resnet50 convert` does),
/// which leaves existing mappings on the old inode untouched.
pub fn map_file(file: &File) -> io::Result<Mmap> {
    // SAFETY: the mapping is read-only (no `&mut` aliasing is ever created
    // from it), it is kept alive by the returned `Mmap` for as long as any
    // slice borrowed from it, and concurrent modification of the underlying
    // file by another process is the documented hazard above (see the
    // function's contract), which no safe API can exclude.
    let map = unsafe { Mmap::map(file) }?;
    // Huge pages where the file system can give them (the weights stream
    // from DRAM every inference; see crate::buffer). Only advice: most file
    // systems refuse it and keep 4 KiB pages.
    #[cfg(target_os = "linux")]
    let _ = map.advise(memmap2::Advice::HugePage);
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn maps_what_was_written() {
        let path = std::env::temp_dir().join(format!("resnet50-kernels-mapped-{}", std::process::id()));
        std::fs::File::create(&path).and_then(|mut f| f.write_all(b"hello map")).unwrap();
        let map = map_file(&File::open(&path).unwrap()).unwrap();
        assert_eq!(&map[..], b"hello map");
        drop(map);
        std::fs::remove_file(&path).unwrap();
    }
}
