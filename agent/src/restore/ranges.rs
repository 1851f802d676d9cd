//! Reading only the files a restore wants from a copy: ranged reads of the compressed archive,
//! merged when close together, each decoded from the frame its first file begins in.

use std::collections::HashMap;
use std::path::PathBuf;

use edgebackup_proto::v1 as pb;

use crate::archive;

/// Wanted files of one package read with one ranged read: from the frame the first one begins
/// in to the end of the last one's.
#[derive(Debug)]
pub(super) struct Group {
    pub offset: u64,
    pub length: u64,
    pub skip: u64,
    /// Path → expected sha256.
    pub wanted: HashMap<String, String>,
}

/// Decodes one group's range: skips to its first entry, then extracts the wanted files.
pub(super) fn extract_group(
    reader: crate::station::RangeReader,
    g: &Group,
    dest_of: &dyn Fn(&str) -> PathBuf,
    on: &dyn Fn(archive::Extracted),
) -> Result<(Vec<String>, Vec<archive::Mismatch>), String> {
    use std::io::Read;
    let mut stream = zstd::Decoder::new(reader).map_err(|e| e.to_string())?;
    let why = match std::io::copy(&mut (&mut stream).take(g.skip), &mut std::io::sink()) {
        Ok(n) if n == g.skip => {
            return archive::extract_selected(stream, dest_of, &g.wanted, on).map_err(|e| e.to_string());
        }
        Ok(_) => "the range ends before the file".to_owned(),
        Err(e) => format!("unreadable in the archive: {e}"),
    };
    let bad = g.wanted.keys().map(|p| archive::Mismatch { path: p.clone(), reason: why.clone() }).collect();
    Ok((Vec::new(), bad))
}

/// Files this close together (compressed bytes between one range's end and the next one's
/// start) are read in one go: cheaper than another request.
const MERGE_GAP: u64 = 1 << 20;

/// The ranged reads that fetch `wanted`, when every file has a range and together they are
/// well under the whole copy (otherwise the copy is read whole, in one pass).
pub(super) fn ranged(wanted: &HashMap<String, &pb::FileEntry>, package_size: u64) -> Option<Vec<Group>> {
    let mut files: Vec<(&String, &pb::FileEntry, pb::PackRange)> =
        wanted.iter().map(|(p, e)| e.range.map(|r| (p, *e, r))).collect::<Option<_>>()?;
    files.sort_by_key(|(_, _, r)| (r.offset, r.skip));
    let mut groups: Vec<Group> = Vec::new();
    for (path, e, r) in files {
        let end = r.offset.saturating_add(r.length);
        match groups.last_mut() {
            Some(g) if r.offset <= g.offset + g.length + MERGE_GAP => {
                g.length = g.length.max(end - g.offset);
                g.wanted.insert(path.clone(), e.sha256.clone());
            }
            _ => groups.push(Group {
                offset: r.offset,
                length: r.length,
                skip: r.skip,
                wanted: HashMap::from([(path.clone(), e.sha256.clone())]),
            }),
        }
    }
    let total: u64 = groups.iter().map(|g| g.length).sum();
    (total < package_size / 2).then_some(groups)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, offset: u64, length: u64, skip: u64) -> pb::FileEntry {
        pb::FileEntry {
            path: path.into(),
            sha256: format!("{path}-sha"),
            range: Some(pb::PackRange { offset, length, skip }),
            ..Default::default()
        }
    }

    #[test]
    fn ranges_close_together_are_one_read_and_most_of_a_copy_is_read_whole() {
        let (a, b, c) = (file("a", 0, 100, 512), file("b", 50, 100, 9000), file("c", 10 << 20, 1000, 0));
        let wanted: HashMap<String, &pb::FileEntry> =
            [("a", &a), ("b", &b), ("c", &c)].into_iter().map(|(p, e)| (p.to_owned(), e)).collect();
        let groups = ranged(&wanted, 1 << 30).expect("ranged");
        assert_eq!(groups.len(), 2);
        assert_eq!((groups[0].offset, groups[0].length, groups[0].skip), (0, 150, 512));
        assert_eq!(groups[0].wanted.len(), 2);
        assert_eq!((groups[1].offset, groups[1].length), (10 << 20, 1000));
        // Half the copy or more: read whole, in one pass.
        assert!(ranged(&wanted, 2000).is_none());
        // A file without a range (an older package): read whole.
        let old = pb::FileEntry { path: "d".into(), ..Default::default() };
        let mut with_old = wanted.clone();
        with_old.insert("d".into(), &old);
        assert!(ranged(&with_old, 1 << 30).is_none());
    }
}
