//! Uploads: file archives for `files:` (per user, by content hash) and a local repo's code (per
//! project). The content must hash to the name it is uploaded under.

use axum::Json;
use axum::extract::{Multipart, State};
use serde_json::{Value, json};

use super::super::http::{Auth, Body, Member};
use super::super::{ApiError, AppState, storage, submit};

/// Reads the `file` field of an upload (its file name is the content's SHA-256), enforcing the
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
            .map(str::to_ascii_lowercase)
            .ok_or_else(|| ApiError::client("filename not specified"))?;
        if !submit::valid_hash(&hash) {
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
                storage::size_text(size),
                storage::size_text(limit)
            )));
        }
        let (data, actual) = tokio::task::spawn_blocking(move || {
            let actual = storage::sha256_hex(&data);
            (data, actual)
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
        if actual != hash {
            return Err(ApiError::client(format!(
                "The upload's content does not match its name: its SHA-256 is {actual}, not {hash}"
            )));
        }
        return Ok((hash, data));
    }
    Err(ApiError::Unprocessable(
        "the `file` field is missing".into(),
    ))
}

fn store_failed(e: std::io::Error) -> ApiError {
    ApiError::Internal(format!("cannot store the upload: {e}"))
}

/// `POST /api/files/upload_archive`
pub(super) async fn upload_archive(
    State(state): State<AppState>,
    Auth(user): Auth,
    multipart: Multipart,
) -> Result<Json<Value>, ApiError> {
    let (hash, data) = read_upload(&state, multipart).await?;
    let id = storage::archive_id(&user.id, &hash);
    let path = storage::archive_path(&state.dir, &id)
        .ok_or_else(|| ApiError::Internal("bad archive id".into()))?;
    storage::store(&path, &data).await.map_err(store_failed)?;
    state.db.record_archive(&id, &user.id, &hash).await?;
    Ok(Json(json!({"id": id, "hash": hash})))
}

/// `POST /api/project/{p}/repos/upload_code?repo_id=...`: a tar of a local repo's files.
pub(super) async fn upload_code(
    State(state): State<AppState>,
    m: Member,
    multipart: Multipart,
) -> Result<Json<Value>, ApiError> {
    let (hash, data) = read_upload(&state, multipart).await?;
    let path = storage::code_path(&state.dir, &m.project.id, &hash)
        .ok_or_else(|| ApiError::Internal("bad code path".into()))?;
    storage::store(&path, &data).await.map_err(store_failed)?;
    Ok(Json(Value::Null))
}

#[derive(Debug, serde::Deserialize)]
pub(super) struct ByHash {
    hash: String,
}

/// A user's own archive with this hash.
pub(super) async fn get_archive_by_hash(
    State(state): State<AppState>,
    Auth(user): Auth,
    Body(req): Body<ByHash>,
) -> Result<Json<Value>, ApiError> {
    let hash = req.hash.to_ascii_lowercase();
    match state.db.archive_by_hash(&user.id, &hash).await? {
        Some(a) => Ok(Json(json!({"id": a.id, "hash": a.blob_hash}))),
        None => Err(ApiError::not_exists("File archive not found")),
    }
}

/// `repos/init`: nothing to store for virtual and local repos.
pub(super) async fn repos_init(_m: Member) -> Result<Json<Value>, ApiError> {
    Ok(Json(Value::Null))
}
