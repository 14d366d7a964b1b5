//! File archives uploaded for `files:` (`POST /api/files/upload_archive`): tar archives stored
//! under `<server dir>/archives/`, identified per user and content hash, and unpacked into a
//! job's file system before it starts.

use std::path::{Path, PathBuf};

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Multipart, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::routes::{authenticate, required_body};
use super::{ApiError, AppState};

/// The id of a user's archive with a given hash.
pub(crate) fn archive_id(user_id: &str, hash: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_OID,
        format!("file-archive/{user_id}/{hash}").as_bytes(),
    )
    .to_string()
}

/// Where an archive is stored.
pub(crate) fn archive_path(state: &AppState, id: &str) -> PathBuf {
    state.dir.join("archives").join(format!("{id}.tar"))
}

fn valid_hash(hash: &str) -> bool {
    (16..=128).contains(&hash.len()) && hash.bytes().all(|b| b.is_ascii_hexdigit())
}

fn size_text(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = bytes as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1}{}", UNITS[unit])
}

/// Where a project's uploaded repo code is stored.
pub(crate) fn code_path(state: &AppState, project_id: &str, hash: &str) -> PathBuf {
    state
        .dir
        .join("codes")
        .join(project_id)
        .join(format!("{hash}.tar"))
}

async fn store(path: &Path, data: &[u8]) -> Result<(), ApiError> {
    if path.exists() {
        return Ok(());
    }
    let fail = |e: std::io::Error| ApiError::client(format!("cannot store the upload: {e}"));
    let dir = path
        .parent()
        .ok_or_else(|| ApiError::client("bad storage path"))?;
    tokio::fs::create_dir_all(dir).await.map_err(fail)?;
    let tmp = path.with_extension("tmp");
    tokio::fs::write(&tmp, data).await.map_err(fail)?;
    tokio::fs::rename(&tmp, path).await.map_err(fail)
}

/// Reads the `file` field of an upload (its file name is the content hash), enforcing the
/// upload limit. Past the limit the body is still drained, so the client gets the answer.
async fn read_upload(
    state: &AppState,
    mut multipart: Multipart,
) -> Result<(String, Vec<u8>), ApiError> {
    let limit = state.upload_limit;
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| ApiError::Unprocessable(format!("invalid multipart body: {e}")))?
    {
        if field.name() != Some("file") {
            continue;
        }
        let hash = field
            .file_name()
            .map(str::to_string)
            .ok_or_else(|| ApiError::client("filename not specified"))?;
        if !valid_hash(&hash) {
            return Err(ApiError::client(
                "the upload's file name must be its hex SHA-256 hash",
            ));
        }
        let mut data: Vec<u8> = Vec::new();
        let mut size: u64 = 0;
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| ApiError::Unprocessable(format!("cannot read the upload: {e}")))?
        {
            size += chunk.len() as u64;
            if limit == 0 || size <= limit {
                data.extend_from_slice(&chunk);
            }
        }
        if limit > 0 && size > limit {
            return Err(ApiError::client(format!(
                "Archive size is {}, which exceeds the limit of {}. Use .gitignore/.dstackignore to exclude large files. This limit can be modified by setting the DSTACK_SERVER_CODE_UPLOAD_LIMIT environment variable.",
                size_text(size),
                size_text(limit)
            )));
        }
        return Ok((hash, data));
    }
    Err(ApiError::Unprocessable(
        "the `file` field is missing".into(),
    ))
}

/// `POST /api/files/upload_archive`
pub(super) async fn upload_archive(
    State(state): State<AppState>,
    headers: HeaderMap,
    multipart: Multipart,
) -> Result<Json<Value>, ApiError> {
    let user = authenticate(&state, &headers).await?;
    let (hash, data) = read_upload(&state, multipart).await?;
    let id = archive_id(&user.id, &hash);
    store(&archive_path(&state, &id), &data).await?;
    Ok(Json(json!({"id": id, "hash": hash})))
}

/// `POST /api/project/{p}/repos/upload_code?repo_id=...`: a tar of a local repo's files.
pub(super) async fn upload_code(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(project_name): axum::extract::Path<String>,
    multipart: Multipart,
) -> Result<Json<Value>, ApiError> {
    let (_, project) = super::routes::project_access(&state, &headers, &project_name).await?;
    let (hash, data) = read_upload(&state, multipart).await?;
    store(&code_path(&state, &project.id, &hash), &data).await?;
    Ok(Json(Value::Null))
}

#[derive(Debug, serde::Deserialize)]
struct ByHash {
    hash: String,
}

pub(super) async fn get_archive_by_hash(
    State(state): State<AppState>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Result<Json<Value>, ApiError> {
    let user = authenticate(&state, &headers).await?;
    let req: ByHash = required_body(&bytes)?;
    let id = archive_id(&user.id, &req.hash);
    if valid_hash(&req.hash) && archive_path(&state, &id).exists() {
        Ok(Json(json!({"id": id, "hash": req.hash})))
    } else {
        Err(ApiError::not_exists("File archive not found"))
    }
}

/// Unpacks an archive to `dest`: a single file becomes `dest`; a directory's contents go into
/// `dest`. Uses the system `tar`.
pub(crate) fn unpack(archive: &Path, dest: &Path, scratch: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch)
        .map_err(|e| format!("cannot create {}: {e}", scratch.display()))?;
    let status = std::process::Command::new("tar")
        .arg("-xf")
        .arg(archive)
        .arg("--no-same-owner")
        .arg("-C")
        .arg(scratch)
        .status()
        .map_err(|e| format!("cannot run tar: {e}"))?;
    if !status.success() {
        return Err(format!("tar failed to unpack {}", archive.display()));
    }
    let entries: Vec<PathBuf> = std::fs::read_dir(scratch)
        .map_err(|e| e.to_string())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    let [root] = entries.as_slice() else {
        return Err("the archive must hold exactly one file or directory".into());
    };
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    if root.is_dir() {
        std::fs::create_dir_all(dest)
            .map_err(|e| format!("cannot create {}: {e}", dest.display()))?;
        let status = std::process::Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", root.display()))
            .arg(dest)
            .status()
            .map_err(|e| format!("cannot run cp: {e}"))?;
        if !status.success() {
            return Err(format!("cannot copy files into {}", dest.display()));
        }
    } else {
        std::fs::rename(root, dest)
            .or_else(|_| std::fs::copy(root, dest).map(|_| ()))
            .map_err(|e| format!("cannot place {}: {e}", dest.display()))?;
    }
    let _ = std::fs::remove_dir_all(scratch);
    Ok(())
}
