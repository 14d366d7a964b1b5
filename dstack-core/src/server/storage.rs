//! Uploaded blobs on disk: file archives (`files:`) under `<server dir>/archives/<id>.tar` and a
//! project's repo code under `<server dir>/codes/<project id>/<sha256>.tar`. Paths are built
//! only from ids and hashes that were checked here.

use std::path::{Path, PathBuf};

/// The id of a user's archive with a given hash.
pub(crate) fn archive_id(user_id: &str, hash: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("file-archive/{user_id}/{hash}").as_bytes(),
    )
    .to_string()
}

/// Where an archive is stored; `None` unless `id` is a UUID.
pub(crate) fn archive_path(dir: &Path, id: &str) -> Option<PathBuf> {
    let id = uuid::Uuid::parse_str(id).ok()?;
    Some(dir.join("archives").join(format!("{id}.tar")))
}

/// Where a project's uploaded repo code is stored; `None` unless the ids and hash are valid.
pub(crate) fn code_path(dir: &Path, project_id: &str, hash: &str) -> Option<PathBuf> {
    let project = uuid::Uuid::parse_str(project_id).ok()?;
    super::submit::valid_hash(hash).then(|| {
        dir.join("codes")
            .join(project.to_string())
            .join(format!("{}.tar", hash.to_ascii_lowercase()))
    })
}

/// The hex SHA-256 of some bytes.
pub(crate) fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Stores a blob atomically; an existing blob (same content, by its hash) is kept.
pub(crate) async fn store(path: &Path, data: &[u8]) -> std::io::Result<()> {
    if tokio::fs::try_exists(path).await.unwrap_or(false) {
        return Ok(());
    }
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("bad storage path"))?;
    tokio::fs::create_dir_all(dir).await?;
    let tmp = path.with_extension(format!("tmp-{}", uuid::Uuid::new_v4()));
    tokio::fs::write(&tmp, data).await?;
    tokio::fs::rename(&tmp, path).await
}

/// `1.5MiB`-style sizes, as the original writes them.
pub(crate) fn size_text(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1}{}", UNITS[unit])
}
